//! Bytes -> upright 8-bit RGB, the way `training/skinscan_train/preprocess.py::decode` does it
//! with PIL: EXIF orientation applied, alpha composited onto the manifest's background with
//! PIL's integer `alpha_composite` arithmetic, grayscale / CMYK / 16-bit converted to RGB.
//!
//! The format is recognised from the magic bytes, not a file name, so that unsupported formats
//! (HEIC, AVIF, SVG, PDF, TIFF, …) can be named in the error. Dimensions are checked against
//! [`MAX_SIDE`] and [`MAX_PIXELS`] from the header, before any pixel buffer is allocated, and the
//! decoder itself runs under an allocation cap ([`MAX_ALLOC`]), so a decompression bomb is a
//! typed error, not an out-of-memory abort.

use std::io::Cursor;

use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage, RgbaImage,
};

use crate::error::{Error, Result};

/// Longest accepted side in pixels: phone sensors top out around 12,000 px today.
pub const MAX_SIDE: u32 = 16_384;
/// Most pixels accepted: 64 megapixels, above the 48–50 MP of current phone main cameras.
pub const MAX_PIXELS: u64 = 64_000_000;
/// Cap on the decoder's allocations (image 0.25's own default, kept explicit).
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// What the file turned out to be, once decoded.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Upright, alpha-flattened RGB pixels.
    pub image: RgbImage,
    /// Short name of the container format (`"JPEG"`, `"PNG"`, …).
    pub format: &'static str,
}

/// Decode any supported image to upright RGB8, compositing transparency onto `background`.
pub fn decode(bytes: &[u8], background: [u8; 3]) -> Result<Decoded> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    let format = sniff(bytes)?;
    if format == ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }
    // Last resort only: the decoders are meant not to panic, but user bytes must never take the
    // process (or the page's worker) down natively. (On wasm32 panics abort regardless.)
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_known(bytes, format, background)
    }))
    .unwrap_or_else(|_| {
        Err(Error::Corrupt(format!(
            "the {} decoder failed on this file",
            name(format)
        )))
    })?;
    Ok(Decoded {
        image: decoded,
        format: name(format),
    })
}

fn decode_known(bytes: &[u8], format: ImageFormat, background: [u8; 3]) -> Result<RgbImage> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(from_image_error)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    decoder.set_limits(limits).map_err(from_image_error)?;
    // A malformed EXIF block is ignored, as PIL's exif_transpose does.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::Corrupt("the image has no pixels".into()));
    }
    let rgb = if img.color().has_alpha() {
        flatten(&img.into_rgba8(), background)
    } else {
        img.into_rgb8()
    };
    let mut upright = DynamicImage::ImageRgb8(rgb);
    upright.apply_orientation(orientation);
    Ok(upright.into_rgb8())
}

fn check_dimensions(width: u32, height: u32) -> Result<()> {
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::TooLarge {
            width,
            height,
            max_side: MAX_SIDE,
            max_megapixels: (MAX_PIXELS / 1_000_000) as u32,
        });
    }
    Ok(())
}

fn from_image_error(e: ImageError) -> Error {
    match e {
        ImageError::Limits(l) => Error::MemoryLimit(l.to_string()),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Corrupt("the file ends too early (truncated)".into())
        }
        other => Error::Corrupt(other.to_string()),
    }
}

/// PIL's `Image.alpha_composite(background, image)` for an opaque background, in its own integer
/// arithmetic (Pillow `libImaging/AlphaComposite.c`, PRECISION_BITS = 7), so RGBA files give
/// the same bytes as training's decode.
fn flatten(rgba: &RgbaImage, background: [u8; 3]) -> RgbImage {
    const PRECISION_BITS: u32 = 7;
    let shift_div_255 = |a: u32| ((a >> 8) + a) >> 8;
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p[3]);
        if a == 0 {
            o.0 = background;
            continue;
        }
        // With an opaque destination: blend = 255 * (255 - a), outa255 = 255 * 255.
        let outa255 = a * 255 + 255 * (255 - a);
        let coef1 = a * 255 * 255 * (1 << PRECISION_BITS) / outa255;
        let coef2 = 255 * (1 << PRECISION_BITS) - coef1;
        for c in 0..3 {
            let tmp = u32::from(p[c]) * coef1 + u32::from(background[c]) * coef2;
            o[c] = (shift_div_255(tmp + (0x80 << PRECISION_BITS)) >> PRECISION_BITS) as u8;
        }
    }
    out
}

/// A JPEG without an end-of-image marker after its first scan was cut short. PIL (training's
/// decoder) refuses such files, and zune-jpeg would silently fill the missing part with grey.
fn check_jpeg_complete(bytes: &[u8]) -> Result<()> {
    let truncated = || {
        Err(Error::Corrupt(
            "the JPEG file is truncated (no end-of-image marker)".into(),
        ))
    };
    // Walk the marker segments to the first SOS; thumbnails inside APP1 carry their own EOI.
    let mut i = 2;
    loop {
        while i < bytes.len() && bytes[i] == 0xFF && bytes.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        if i + 1 >= bytes.len() {
            return truncated();
        }
        if bytes[i] != 0xFF {
            return Err(Error::Corrupt("the JPEG marker structure is broken".into()));
        }
        let marker = bytes[i + 1];
        i += 2;
        match marker {
            0xDA => break,
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return Err(Error::Corrupt("the JPEG file has no image data".into())),
            _ => {
                if i + 1 >= bytes.len() {
                    return truncated();
                }
                let len = usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
                if len < 2 {
                    return Err(Error::Corrupt("the JPEG marker structure is broken".into()));
                }
                i += len;
            }
        }
    }
    // Inside entropy-coded data 0xFF is always stuffed (FF 00) or a restart marker, so FF D9
    // after the first SOS is the real end of the image.
    if bytes[i..].windows(2).any(|w| w == [0xFF, 0xD9]) {
        Ok(())
    } else {
        truncated()
    }
}

fn name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        ImageFormat::WebP => "WebP",
        ImageFormat::Bmp => "BMP",
        ImageFormat::Gif => "GIF",
        _ => "image",
    }
}

const SUPPORTED: &str = "JPEG, PNG, WebP, BMP or GIF";

fn unsupported(format: &str, advice: &str) -> Error {
    Error::Unsupported {
        format: format.into(),
        advice: advice.into(),
    }
}

/// Recognise the format from its first bytes: one of ours, or a named refusal.
pub fn sniff(b: &[u8]) -> Result<ImageFormat> {
    let starts = |m: &[u8]| b.starts_with(m);
    if b.is_empty() {
        return Err(Error::Empty);
    }
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageFormat::Jpeg);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageFormat::Png);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(ImageFormat::Gif);
    }
    if starts(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        return Ok(ImageFormat::WebP);
    }
    if starts(b"BM") && b.len() >= 26 {
        return Ok(ImageFormat::Bmp);
    }
    let photo = format!("export the photo as JPEG");
    let other = format!("upload a photo as {SUPPORTED}");
    if b.get(4..8) == Some(b"ftyp") {
        return Err(iso_media(b));
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return Err(unsupported(
            "TIFF (or camera RAW)",
            &format!("export the photo as JPEG or PNG"),
        ));
    }
    if starts(b"%PDF-") {
        return Err(unsupported("PDF", &other));
    }
    if starts(&[0xFF, 0x0A]) || starts(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Err(unsupported("JPEG XL", &photo));
    }
    if starts(b"\0\0\0\x0cjP  ") || starts(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return Err(unsupported("JPEG 2000", &photo));
    }
    if starts(b"8BPS") {
        return Err(unsupported("Photoshop (PSD)", &photo));
    }
    if starts(&[0, 0, 1, 0]) {
        return Err(unsupported("ICO", &other));
    }
    if starts(b"PK\x03\x04") {
        return Err(unsupported("a ZIP archive (or office document)", &other));
    }
    if starts(b"qoif")
        || starts(b"farbfeld")
        || starts(b"#?RADIANCE")
        || starts(b"\x76\x2f\x31\x01")
    {
        return Err(unsupported("this image format", &other));
    }
    if let Some(kind) = text_kind(b) {
        return Err(unsupported(kind, &other));
    }
    Err(Error::UnknownFormat(format!(
        "the file is not a {SUPPORTED} image"
    )))
}

/// ISO base media (`ftyp`): HEIC/HEIF stills, AVIF, or video.
fn iso_media(b: &[u8]) -> Error {
    let size = b
        .get(0..4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize);
    let end = size.clamp(12, 256).min(b.len());
    let mut brands: Vec<&[u8]> = b.get(8..12).into_iter().collect();
    brands.extend(b.get(16..end).unwrap_or(&[]).chunks_exact(4));
    let has = |list: &[&[u8]]| brands.iter().any(|br| list.contains(br));
    if has(&[b"avif", b"avis"]) {
        unsupported("AVIF", "export the photo as JPEG or PNG")
    } else if has(&[
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
    ]) {
        unsupported("HEIC", "export the photo as JPEG")
    } else if has(&[b"mif1", b"msf1"]) {
        unsupported("HEIF", "export the photo as JPEG")
    } else {
        unsupported(
            "video (MP4/QuickTime)",
            &format!("upload a still photo as {SUPPORTED}"),
        )
    }
}

/// SVG, HTML/XML or plain text, judged from the first kilobyte.
fn text_kind(b: &[u8]) -> Option<&'static str> {
    let head = &b[..b.len().min(1024)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let text = match std::str::from_utf8(head) {
        Ok(s) => s,
        // A multi-byte character cut by the 1 KiB window is still text.
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => {
            std::str::from_utf8(&head[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
    {
        return None;
    }
    let lower = text.trim_start().to_ascii_lowercase();
    if lower.contains("<svg") {
        Some("SVG")
    } else if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        Some("HTML")
    } else if lower.starts_with("<?xml") {
        Some("XML")
    } else {
        Some("a text file")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_supported_and_named_formats() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest").unwrap(), ImageFormat::Jpeg);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), ImageFormat::WebP);
        let fmt = |b: &[u8]| match sniff(b) {
            Err(Error::Unsupported { format, .. }) => format,
            other => panic!("{other:?}"),
        };
        assert_eq!(fmt(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), "HEIC");
        assert_eq!(fmt(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"), "AVIF");
        assert_eq!(fmt(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"), "AVIF");
        assert_eq!(fmt(b"\0\0\0\x14ftypmif1\0\0\0\0mif1"), "HEIF");
        assert_eq!(fmt(b"%PDF-1.7\n"), "PDF");
        assert_eq!(
            fmt(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            "SVG"
        );
        assert_eq!(fmt(b"hello, this is not a photo\n"), "a text file");
        assert_eq!(fmt(b"II*\0\x08\0\0\0"), "TIFF (or camera RAW)");
        assert!(matches!(
            sniff(&[0x13, 0x37, 0x00, 0xFE, 0x99]),
            Err(Error::UnknownFormat(_))
        ));
        let heic = Error::Unsupported {
            format: "HEIC".into(),
            advice: "export the photo as JPEG".into(),
        };
        assert_eq!(
            heic.to_string(),
            "HEIC is not supported; export the photo as JPEG"
        );
    }

    #[test]
    fn flatten_matches_pil_alpha_composite() {
        // Values from Pillow 13: Image.alpha_composite(Image.new('RGBA',(1,1),(255,255,255,255)),
        // Image.new('RGBA',(1,1),(r,g,b,a))).
        let mut px = RgbaImage::new(4, 1);
        px.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        px.put_pixel(1, 0, image::Rgba([10, 200, 30, 255]));
        px.put_pixel(2, 0, image::Rgba([0, 100, 250, 128]));
        px.put_pixel(3, 0, image::Rgba([17, 33, 99, 1]));
        let out = flatten(&px, [255, 255, 255]);
        let got: Vec<[u8; 3]> = out.pixels().map(|p| p.0).collect();
        assert_eq!(
            got,
            vec![
                [255, 255, 255],
                [10, 200, 30],
                [127, 177, 252],
                [254, 254, 254]
            ]
        );
    }

    #[test]
    fn truncated_jpeg_is_detected_from_markers() {
        // SOI, APP0 (len 4), SOS (len 2) and scan bytes, then EOI.
        let whole = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF, 0xDA, 0, 2, 7, 0xFF, 0x00, 9, 0xFF, 0xD9,
        ];
        assert!(check_jpeg_complete(&whole).is_ok());
        assert!(matches!(
            check_jpeg_complete(&whole[..16]),
            Err(Error::Corrupt(_))
        ));
        // An EOI inside APP1 (a thumbnail) does not count.
        let thumb = [
            0xFF, 0xD8, 0xFF, 0xE1, 0, 4, 0xFF, 0xD9, 0xFF, 0xDA, 0, 2, 7, 8,
        ];
        assert!(check_jpeg_complete(&thumb).is_err());
    }

    #[test]
    fn dimension_caps() {
        assert!(check_dimensions(8000, 6000).is_ok());
        assert!(matches!(
            check_dimensions(100_000, 10),
            Err(Error::TooLarge { width: 100_000, .. })
        ));
        assert!(matches!(
            check_dimensions(10_000, 10_000),
            Err(Error::TooLarge { .. })
        ));
    }
}
