//! The input suite: hostile and malformed files get a typed error, unusual-but-valid ones a
//! classification, and nothing panics.
//!
//! Fixtures are in `tests/fixtures/inputs/` (made by `tests/fixtures/make_inputs.py` from a real
//! sample); large or trivially crafted inputs (the 48-megapixel photo, the decompression bomb,
//! headers declaring huge sizes) are generated here instead of being committed.

mod common;

use std::io::Write;

use image::{DynamicImage, ImageEncoder, RgbImage};
use skinscan::decode::{self, MAX_SIDE};
use skinscan::{Assessment, Error, Metadata, Warning};

fn classify(bytes: &[u8]) -> skinscan::Result<Assessment> {
    common::classifier().classify(bytes, &Metadata::default())
}

/// The warnings beyond the standing close-up one and the quality gate's (whose verdict depends
/// on the photo and the model, and is tested in tests/quality.rs).
fn other_warnings(a: &Assessment) -> Vec<Warning> {
    let gate = match &a.quality {
        Some(q) => Warning::of_verdict(q.verdict),
        None => Some(Warning::NoGate),
    };
    a.warnings
        .iter()
        .skip(1)
        .copied()
        .filter(|w| Some(*w) != gate)
        .collect()
}

// ---------------------------------------------------------------- crafted files

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A PNG whose IHDR declares `w x h` RGB8, followed by `idat` and IEND.
fn png_declaring(w: u32, h: u32, idat: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, truecolour, deflate, no filter, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A real decompression bomb: a valid 30000x30000 PNG of zeros (900 megapixels, 2.7 GB as
/// RGB) that compresses to a small file. Streamed, so the test never holds the pixels.
fn png_bomb() -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, 30_000, 30_000);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::High);
        let mut w = enc.write_header().unwrap();
        let mut s = w.stream_writer().unwrap();
        let row = vec![0u8; 30_000];
        for _ in 0..30_000 {
            s.write_all(&row).unwrap();
        }
        s.finish().unwrap();
    }
    buf
}

/// A BMP header declaring `w x h` 24-bit with no pixel data.
fn bmp_declaring(w: i32, h: i32) -> Vec<u8> {
    let mut b = b"BM".to_vec();
    b.extend_from_slice(&(54u32).to_le_bytes()); // file size (a lie: no pixels follow)
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(54u32).to_le_bytes()); // pixel offset
    b.extend_from_slice(&(40u32).to_le_bytes()); // BITMAPINFOHEADER
    b.extend_from_slice(&w.to_le_bytes());
    b.extend_from_slice(&h.to_le_bytes());
    b.extend_from_slice(&(1u16).to_le_bytes());
    b.extend_from_slice(&(24u16).to_le_bytes());
    b.extend_from_slice(&[0; 24]);
    b
}

/// Deterministic noise (xorshift64*).
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn encode_png(img: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn encode_jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    out
}

fn cut(bytes: &[u8], fraction: f64) -> Vec<u8> {
    bytes[..(bytes.len() as f64 * fraction) as usize].to_vec()
}

// ---------------------------------------------------------------- the suite

type Check = fn(&Error) -> bool;

fn unsupported(format: &'static str) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::Unsupported { format: f, .. } if f == format)
}

#[test]
fn hostile_and_malformed_inputs_get_typed_errors() {
    let corrupt: Check = |e| matches!(e, Error::Corrupt(_));
    let too_large: Check = |e| matches!(e, Error::TooLarge { .. });
    let avif_header = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf\0\0\0\x08meta".to_vec();
    let gif_no_frames = b"GIF89a\x0a\x00\x0a\x00\x00\x00\x00\x3b".to_vec();
    let mut zero_png = png_declaring(0, 0, &[]);
    let mut garbage_idat = png_declaring(64, 64, &noise(500, 7));
    let reference_png = common::input("reference.png");
    let upright = common::input("upright.jpg");
    let mut jpeg_noise = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg_noise.extend(noise(3000, 11));
    let mut random = noise(4096, 42);
    random[0] = 0x13; // not any magic number
    let bomb = png_bomb();
    assert!(
        bomb.len() < 1_000_000,
        "the bomb is a small file: {} bytes",
        bomb.len()
    );

    let cases: Vec<(&str, Vec<u8>, Box<dyn Fn(&Error) -> bool>)> = vec![
        (
            "empty file",
            vec![],
            Box::new(|e| matches!(e, Error::Empty)),
        ),
        (
            "truncated JPEG (fixture, 60%)",
            common::input("truncated.jpg"),
            Box::new(corrupt),
        ),
        (
            "JPEG cut after its headers",
            cut(&upright, 0.05),
            Box::new(corrupt),
        ),
        (
            "JPEG magic then noise",
            jpeg_noise.clone(),
            Box::new(corrupt),
        ),
        (
            "JPEG magic, noise, end marker",
            [jpeg_noise, vec![0xFF, 0xD9]].concat(),
            Box::new(corrupt),
        ),
        (
            "text renamed .jpg",
            common::input("text.jpg"),
            Box::new(unsupported("a text file")),
        ),
        (
            "PNG declaring 100000x100000",
            png_declaring(100_000, 100_000, &[0; 16]),
            Box::new(|e| {
                matches!(
                    e,
                    Error::TooLarge {
                        width: 100_000,
                        height: 100_000,
                        ..
                    }
                )
            }),
        ),
        (
            "PNG bomb 30000x30000 of zeros",
            bomb,
            Box::new(|e| {
                matches!(
                    e,
                    Error::TooLarge {
                        width: 30_000,
                        height: 30_000,
                        ..
                    }
                )
            }),
        ),
        (
            "PNG wider than the cap",
            png_declaring(MAX_SIDE + 1, 1, &[0; 16]),
            Box::new(too_large),
        ),
        (
            "BMP declaring 20000x20000",
            bmp_declaring(20_000, 20_000),
            Box::new(|e| {
                matches!(
                    e,
                    Error::TooLarge {
                        width: 20_000,
                        height: 20_000,
                        ..
                    }
                )
            }),
        ),
        (
            "PNG declaring 0x0",
            std::mem::take(&mut zero_png),
            Box::new(corrupt),
        ),
        (
            "PNG with garbage pixel data",
            std::mem::take(&mut garbage_idat),
            Box::new(corrupt),
        ),
        ("truncated PNG", cut(&reference_png, 0.5), Box::new(corrupt)),
        (
            "truncated WebP",
            cut(&common::input("lossless.webp"), 0.5),
            Box::new(corrupt),
        ),
        (
            "truncated BMP",
            cut(&common::input("reference.bmp"), 0.3),
            Box::new(corrupt),
        ),
        ("GIF with zero frames", gif_no_frames, Box::new(corrupt)),
        (
            "HEIC header (ftyp heic)",
            common::input("photo.heic"),
            Box::new(|e| {
                unsupported("HEIC")(e)
                    && e.to_string() == "HEIC is not supported; export the photo as JPEG"
            }),
        ),
        ("AVIF header", avif_header, Box::new(unsupported("AVIF"))),
        (
            "SVG",
            common::input("drawing.svg"),
            Box::new(unsupported("SVG")),
        ),
        (
            "PDF",
            common::input("document.pdf"),
            Box::new(unsupported("PDF")),
        ),
        (
            "TIFF header",
            b"II*\0\x08\0\0\0\0\0".to_vec(),
            Box::new(unsupported("TIFF (or camera RAW)")),
        ),
        (
            "random bytes",
            random,
            Box::new(|e| matches!(e, Error::UnknownFormat(_))),
        ),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (name, bytes, check) in &cases {
        match classify(bytes) {
            Ok(a) => failures.push(format!("{name}: classified ({})", a.risk_tier.as_str())),
            Err(e) => {
                let line = e.to_string();
                eprintln!("{name:<32} -> error: {line}");
                if !check(&e) {
                    failures.push(format!("{name}: unexpected error {e:?}"));
                }
                if line.contains('\n') || line.is_empty() {
                    failures.push(format!("{name}: message is not one line"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn assert_ok(name: &str, a: &Assessment) {
    assert!((0.0..=1.0).contains(&a.malignant_probability), "{name}");
    assert_eq!(a.warnings[0], Warning::CloseUp, "{name}");
    let total: f64 = a.diagnosis.0.iter().map(|(_, p)| p).sum();
    assert!((total - 1.0).abs() < 1e-6, "{name}");
}

/// Same pixels in, same numbers out: every probability bit-for-bit.
fn assert_same(name: &str, a: &Assessment, b: &Assessment) {
    assert_eq!(a.diagnosis, b.diagnosis, "{name}: diagnosis");
    assert_eq!(a.malignant_probability, b.malignant_probability, "{name}");
    assert_eq!(a.risk_tier, b.risk_tier, "{name}");
}

#[test]
fn unusual_but_valid_inputs_are_classified() {
    let reference = classify(&common::input("reference.png")).unwrap();
    assert_ok("reference.png", &reference);
    assert!(
        other_warnings(&reference).is_empty(),
        "a 192x144 photo gets no size warning: {:?}",
        reference.warnings
    );

    // Lossless containers of the same pixels must give exactly the same result.
    for name in ["reference.bmp", "lossless.webp", "exif6.png"] {
        let a = classify(&common::input(name)).unwrap();
        eprintln!(
            "{name:<16} -> {} {:.4}",
            a.risk_tier.as_str(),
            a.malignant_probability
        );
        assert_same(name, &a, &reference);
        assert_eq!(a.image_size, (192, 144), "{name}: upright size");
    }
    // 16-bit RGB PNG of the same pixels (v * 257 maps back to v exactly).
    let png = image::load_from_memory(&common::input("reference.png"))
        .unwrap()
        .into_rgb8();
    let wide =
        image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(png.width(), png.height(), |x, y| {
            image::Rgb(png.get_pixel(x, y).0.map(|v| u16::from(v) * 257))
        });
    let a = classify(&encode_png(&DynamicImage::ImageRgb16(wide))).unwrap();
    assert_same("rgb16.png", &a, &reference);
    // Animated GIF: the first frame, exactly as PIL decodes it.
    let gif = classify(&common::input("animated.gif")).unwrap();
    assert_same(
        "animated.gif",
        &gif,
        &classify(&common::input("gif_first.png")).unwrap(),
    );
    // RGBA: composited on the manifest's white exactly as PIL.alpha_composite does.
    let rgba = classify(&common::input("rgba.png")).unwrap();
    assert_same(
        "rgba.png",
        &rgba,
        &classify(&common::input("rgba_flat.png")).unwrap(),
    );
    assert_ne!(
        rgba.diagnosis, reference.diagnosis,
        "transparency must change the picture"
    );

    // Lossy or converted ones: a classification, no error.
    for name in [
        "cmyk.jpg",
        "progressive.jpg",
        "gray.jpg",
        "gray16.png",
        "lossy.webp",
        "upright.jpg",
        "exif6.jpg",
    ] {
        let a = classify(&common::input(name)).unwrap();
        eprintln!(
            "{name:<16} -> {} {:.4}",
            a.risk_tier.as_str(),
            a.malignant_probability
        );
        assert_ok(name, &a);
        assert!(other_warnings(&a).is_empty(), "{name}: {:?}", a.warnings);
    }
}

/// Mean absolute difference of two decoded RGB images of the same size, in 8-bit levels.
fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let s: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    s as f64 / a.as_raw().len() as f64
}

#[test]
fn colour_conversions_keep_the_picture() {
    let bg = [255, 255, 255];
    let upright = decode::decode(&common::input("upright.jpg"), bg)
        .unwrap()
        .image;
    // CMYK (Adobe, inverted as Pillow writes it) comes back as the same picture, not a negative.
    let cmyk = decode::decode(&common::input("cmyk.jpg"), bg)
        .unwrap()
        .image;
    let d = mean_abs_diff(&cmyk, &upright);
    eprintln!("cmyk vs upright: mean |d| = {d:.2} levels");
    assert!(d < 4.0, "CMYK decode is off by {d:.2} levels on average");
    let progressive = decode::decode(&common::input("progressive.jpg"), bg)
        .unwrap()
        .image;
    let d = mean_abs_diff(&progressive, &upright);
    assert!(d < 4.0, "progressive decode is off by {d:.2} levels");
    // Grayscale becomes R = G = B.
    let gray = decode::decode(&common::input("gray.jpg"), bg)
        .unwrap()
        .image;
    assert!(gray.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let g16 = decode::decode(&common::input("gray16.png"), bg)
        .unwrap()
        .image;
    assert!(g16.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    assert!(
        g16.pixels().any(|p| p[0] > 100),
        "16-bit values are scaled, not clipped to 255 or truncated to 0"
    );
}

/// The same file with its EXIF Orientation tag (0x0112) rewritten from 6 to 1.
fn without_orientation(jpeg: &[u8]) -> Vec<u8> {
    let le = [0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00];
    let be = [0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x06];
    let mut out = jpeg.to_vec();
    let (at, value_at) = match out.windows(10).position(|w| w == le) {
        Some(i) => (i, i + 8),
        None => {
            let i = out
                .windows(10)
                .position(|w| w == be)
                .expect("an EXIF orientation tag of 6");
            (i, i + 9)
        }
    };
    assert!(at < 200, "the tag sits in the APP1 header");
    out[value_at] = 1;
    out
}

#[test]
fn exif_orientation_6_gives_the_upright_result() {
    let bg = [255, 255, 255];
    let exif6 = common::input("exif6.jpg");
    // Stored 240x320, EXIF 6 ("rotate 90 degrees clockwise to display"): decoded upright.
    let shown = decode::decode(&exif6, bg).unwrap().image;
    assert_eq!(shown.dimensions(), (320, 240));
    // Exactly the stored pixels turned 90 degrees clockwise, and so exactly the same assessment.
    let stored = decode::decode(&without_orientation(&exif6), bg)
        .unwrap()
        .image;
    assert_eq!(stored.dimensions(), (240, 320));
    let turned = image::imageops::rotate90(&stored);
    assert!(shown == turned, "orientation 6 is a clockwise quarter turn");
    let a = classify(&exif6).unwrap();
    assert_same(
        "exif6.jpg",
        &a,
        &classify(&encode_png(&DynamicImage::ImageRgb8(turned))).unwrap(),
    );

    // The same photo saved upright (its own JPEG compression): the same picture up to
    // re-compression noise, and a wrong turn would be far off.
    let upright = decode::decode(&common::input("upright.jpg"), bg)
        .unwrap()
        .image;
    let d = mean_abs_diff(&shown, &upright);
    eprintln!("exif6.jpg vs upright.jpg: mean |d| = {d:.2} levels");
    assert!(d < 1.5, "{d}");
    assert!(mean_abs_diff(&image::imageops::rotate180(&shown), &upright) > 5.0);
    let b = classify(&common::input("upright.jpg")).unwrap();
    eprintln!(
        "P(malignant): exif6.jpg {:.5}, upright.jpg {:.5}",
        a.malignant_probability, b.malignant_probability
    );
    assert!((a.malignant_probability - b.malignant_probability).abs() < 0.02);
    // Lossless: exif6.png is bit-for-bit reference.png (unusual_but_valid_inputs_are_classified).
}

#[test]
fn tiny_and_extreme_shapes_are_classified_with_a_warning() {
    let tiny = classify(&common::input("tiny.png")).unwrap();
    assert_ok("tiny.png", &tiny);
    assert_eq!(
        other_warnings(&tiny),
        [Warning::SmallImage {
            width: 8,
            height: 8
        }]
    );
    for (w, h) in [(1, 1), (1, 3000), (3000, 2)] {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, image::Rgb([180, 120, 100])));
        let a = classify(&encode_png(&img)).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
        assert!(
            a.warnings.contains(&Warning::SmallImage {
                width: w,
                height: h
            }),
            "{w}x{h}"
        );
    }
}

#[test]
fn phone_sized_48_megapixel_jpeg_is_classified() {
    // A real sample blown up to 8000x6000 (48 MP, a phone main camera) at quality 85.
    let src = match common::data_dir() {
        Some(d) => std::fs::read(d.join("samples").join("ISIC_0000013.jpg")).unwrap(),
        None => common::input("upright.jpg"),
    };
    let small = image::load_from_memory(&src).unwrap();
    let big = small
        .resize_exact(8000, 6000, image::imageops::FilterType::Nearest)
        .into_rgb8();
    let bytes = encode_jpeg(&big, 85);
    drop(big);
    let a = classify(&bytes).unwrap();
    assert_ok("48 MP", &a);
    assert_eq!(a.image_size, (8000, 6000));
    eprintln!("48 MP JPEG ({} bytes): {:?}", bytes.len(), a.timings_ms);
    // The same photo at its own size: the squash to 224 makes the results close.
    let b = classify(&src).unwrap();
    assert!((a.malignant_probability - b.malignant_probability).abs() < 0.05);
}

#[test]
fn damaged_files_never_panic() {
    // Every fixture cut short and with bytes flipped: an answer or a typed error, never a panic.
    let names = [
        "reference.png",
        "reference.bmp",
        "lossless.webp",
        "lossy.webp",
        "animated.gif",
        "rgba.png",
        "gray16.png",
        "upright.jpg",
        "exif6.jpg",
        "cmyk.jpg",
        "progressive.jpg",
        "gray.jpg",
    ];
    let (mut ok, mut err) = (0, 0);
    for name in names {
        let bytes = common::input(name);
        for k in 0..12u64 {
            let mut b = bytes.clone();
            let noise = noise(8, k * 7919 + b.len() as u64);
            // Flip a few bytes after the magic number, then maybe cut.
            for (i, n) in noise.iter().enumerate().take(4) {
                let at =
                    16 + (usize::from(*n) * 131 + i * 977 + k as usize * 4099) % (b.len() - 16);
                b[at] ^= noise[i + 4] | 1;
            }
            if k % 3 == 0 {
                b.truncate(b.len() * (k as usize % 10 + 1) / 12);
            }
            match std::panic::catch_unwind(|| classify(&b)) {
                Ok(Ok(_)) => ok += 1,
                Ok(Err(e)) => {
                    assert!(!e.to_string().is_empty());
                    err += 1;
                }
                Err(_) => panic!("{name} variant {k} panicked"),
            }
        }
    }
    eprintln!("damaged variants: {ok} classified, {err} typed errors");
    assert!(err > 0);
}
