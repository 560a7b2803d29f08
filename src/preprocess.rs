//! RGB8 image -> model input, mirroring `training/skinscan_train/preprocess.py` line for line.
//!
//! Every parameter comes from the manifest's `preprocess` block; the only values supported for
//! its string fields (`squash`, `triangle`, `RGB`, `NCHW`) are checked by `Manifest::validate`.
//!
//! Resize: PIL's BILINEAR ("triangle") coefficient rule, antialiased when downscaling — support
//! 1 widened by the scale factor, weights normalised per output pixel, computed in f64 and used
//! as f32 — applied horizontally then vertically in f32, without rounding to 8 bits between the
//! passes (PIL would round; training deliberately does not).

use image::RgbImage;

use crate::manifest;

/// Triangle-filter taps of one output pixel: input indices `start..start + weights.len()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Taps {
    pub start: usize,
    pub weights: Vec<f32>,
}

/// Weights mapping `n_in` samples onto `n_out`: `resize_weights` in preprocess.py.
pub fn resize_weights(n_in: usize, n_out: usize) -> Vec<Taps> {
    let scale = n_in as f64 / n_out as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle's support is 1, widened by the downscale factor
    (0..n_out)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((center + support + 0.5).floor() as usize).min(n_in);
            let k: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 + 0.5 - center) / filterscale).abs()).max(0.0))
                .collect();
            let total: f64 = k.iter().sum();
            let weights = if total > 0.0 {
                k.iter().map(|w| (w / total) as f32).collect()
            } else {
                vec![0.0; k.len()]
            };
            Taps { start: lo, weights }
        })
        .collect()
}

/// The manifest's preprocessing, ready to apply.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    size: usize,
    scale: f32,
    mean: [f32; 3],
    std: [f32; 3],
}

impl Preprocessor {
    /// From a validated manifest block (3 means/stds, positive scale).
    pub fn new(p: &manifest::Preprocess) -> Self {
        let three = |v: &[f64]| [v[0] as f32, v[1] as f32, v[2] as f32];
        Preprocessor {
            size: p.size as usize,
            scale: p.scale as f32,
            mean: three(&p.mean),
            std: three(&p.std),
        }
    }

    /// Output side in pixels.
    pub fn size(&self) -> usize {
        self.size
    }

    /// `[1, 3, size, size]` f32, NCHW, RGB, normalised: `(x / scale - mean) / std`.
    pub fn run(&self, img: &RgbImage) -> Vec<f32> {
        self.normalise(&self.resize(img))
    }

    /// The canonical image: `img` squashed to `size x size`, HWC RGB f32 in [0, 255], not
    /// rounded. The model input ([`Preprocessor::normalise`]) and the quality gate share it.
    pub fn resize(&self, img: &RgbImage) -> Vec<f32> {
        resize(img, self.size)
    }

    /// HWC `size x size` RGB in [0, 255] (from [`Preprocessor::resize`]) -> the model input.
    pub fn normalise(&self, resized: &[f32]) -> Vec<f32> {
        let n = self.size * self.size;
        debug_assert_eq!(resized.len(), 3 * n);
        let mut out = vec![0f32; 3 * n];
        for (p, px) in resized.chunks_exact(3).enumerate() {
            for c in 0..3 {
                // Same f32 operation order as numpy: divide, subtract, divide.
                out[c * n + p] = (px[c] / self.scale - self.mean[c]) / self.std[c];
            }
        }
        out
    }
}

/// Squash `img` to `size x size`: HWC f32 in [0, 255], horizontal pass then vertical.
pub fn resize(img: &RgbImage, size: usize) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let wx = resize_weights(w, size);
    let wy = resize_weights(h, size);
    let src = img.as_raw();
    // Horizontal: tmp[y][o][c] = sum_x src[y][x][c] * wx[o][x].
    let mut tmp = vec![0f32; h * size * 3];
    for y in 0..h {
        let row = &src[y * w * 3..(y + 1) * w * 3];
        let out = &mut tmp[y * size * 3..(y + 1) * size * 3];
        for (o, taps) in wx.iter().enumerate() {
            let mut acc = [0f32; 3];
            for (k, &wt) in taps.weights.iter().enumerate() {
                let px = &row[(taps.start + k) * 3..(taps.start + k) * 3 + 3];
                acc[0] += f32::from(px[0]) * wt;
                acc[1] += f32::from(px[1]) * wt;
                acc[2] += f32::from(px[2]) * wt;
            }
            out[o * 3..o * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Vertical: out[p][o][c] = sum_y tmp[y][o][c] * wy[p][y].
    let mut out = vec![0f32; size * size * 3];
    let stride = size * 3;
    for (p, taps) in wy.iter().enumerate() {
        let dst = &mut out[p * stride..(p + 1) * stride];
        for (k, &wt) in taps.weights.iter().enumerate() {
            let src_row = &tmp[(taps.start + k) * stride..(taps.start + k + 1) * stride];
            for (d, s) in dst.iter_mut().zip(src_row) {
                *d += s * wt;
            }
        }
    }
    out
}

/// The `[channels, side, side]` input turned by `k` quarter turns (0 to 3), in the order of
/// `quarter_turns` in training/skinscan_train/image_models.py: with `s = side - 1`, turn 1 takes
/// `x[c, j, s - i]`, turn 2 `x[c, s - i, s - j]`, turn 3 `x[c, s - j, i]` for output `(i, j)`.
pub fn quarter_turn(input: &[f32], side: usize, k: usize) -> Vec<f32> {
    let plane = side * side;
    let s = side - 1;
    let mut out = vec![0f32; input.len()];
    for (src, dst) in input.chunks_exact(plane).zip(out.chunks_exact_mut(plane)) {
        for i in 0..side {
            for j in 0..side {
                let (r, c) = match k % 4 {
                    0 => (i, j),
                    1 => (j, s - i),
                    2 => (s - i, s - j),
                    _ => (s - j, i),
                };
                dst[i * side + j] = src[r * side + c];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(size: u32) -> Preprocessor {
        let mut m = crate::manifest::tests::sample().preprocess;
        m.size = size;
        Preprocessor::new(&m)
    }

    #[test]
    fn weights_match_pil_bilinear_rule() {
        // Identity: each output takes exactly its own input (the neighbour's tap has weight 0).
        for (i, t) in resize_weights(3, 3).iter().enumerate() {
            assert_eq!(t.start, i);
            assert_eq!(t.weights[0], 1.0);
            assert!(t.weights[1..].iter().all(|&w| w == 0.0));
        }
        // 4 -> 2: scale 2, support 2; output 0 centred at 1.0 covers inputs 0..3 with
        // triangle weights 0.75, 0.75, 0.25 -> normalised 3/7, 3/7, 1/7.
        let w = resize_weights(4, 2);
        assert_eq!(w[0].start, 0);
        let expect = [3.0 / 7.0, 3.0 / 7.0, 1.0 / 7.0];
        assert_eq!(w[0].weights.len(), 3);
        for (a, b) in w[0].weights.iter().zip(expect) {
            assert!((a - b as f32).abs() < 1e-7);
        }
        assert_eq!(w[1].start, 1);
        // Upscale 2 -> 4: support 1, output 0 centred at 0.25 -> only input 0.
        let up = resize_weights(2, 4);
        assert_eq!(
            up[0],
            Taps {
                start: 0,
                weights: vec![1.0]
            }
        );
        assert_eq!(up[1].start, 0);
        assert!((up[1].weights[0] - 0.75).abs() < 1e-7 && (up[1].weights[1] - 0.25).abs() < 1e-7);
        // Rows always sum to 1 for any ratio.
        for (n_in, n_out) in [(1022, 224), (117, 224), (8000, 224), (1, 224), (224, 1)] {
            for t in resize_weights(n_in, n_out) {
                let s: f32 = t.weights.iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "{n_in}->{n_out}: {s}");
                assert!(t.start + t.weights.len() <= n_in);
            }
        }
    }

    #[test]
    fn layout_is_nchw_rgb_on_a_2x2_image() {
        // Size 2 from a 2x2 image: the resize is the identity, so the output is only the layout
        // and the normalisation: mean [0.5, 0.25, 0.0], std [0.5, 0.25, 1.0], scale 255.
        let mut img = RgbImage::new(2, 2);
        img.put_pixel(0, 0, image::Rgb([255, 0, 0])); // top-left red
        img.put_pixel(1, 0, image::Rgb([0, 255, 0])); // top-right green
        img.put_pixel(0, 1, image::Rgb([0, 0, 255])); // bottom-left blue
        img.put_pixel(1, 1, image::Rgb([51, 102, 153]));
        let x = pre(2).run(&img);
        let r = |v: f32| (v / 255.0 - 0.5) / 0.5;
        let g = |v: f32| (v / 255.0 - 0.25) / 0.25;
        let b = |v: f32| v / 255.0;
        let expect = [
            // R plane: (y0,x0) (y0,x1) (y1,x0) (y1,x1)
            r(255.0),
            r(0.0),
            r(0.0),
            r(51.0),
            // G plane
            g(0.0),
            g(255.0),
            g(0.0),
            g(102.0),
            // B plane
            b(0.0),
            b(0.0),
            b(255.0),
            b(153.0),
        ];
        assert_eq!(x.len(), 12);
        for (i, (a, e)) in x.iter().zip(expect).enumerate() {
            assert!((a - e).abs() < 1e-6, "index {i}: {a} vs {e}");
        }
    }

    #[test]
    fn quarter_turns_rotate_each_plane_and_come_back() {
        // One 2-channel 3x3 input; torch.rot90(x, 1, (2, 3)) of [[0,1,2],[3,4,5],[6,7,8]] is
        // [[2,5,8],[1,4,7],[0,3,6]] (training's turn 1 is that rotation).
        let x: Vec<f32> = (0..18).map(|v| v as f32).collect();
        let t1 = quarter_turn(&x, 3, 1);
        assert_eq!(&t1[..9], &[2.0, 5.0, 8.0, 1.0, 4.0, 7.0, 0.0, 3.0, 6.0]);
        assert_eq!(
            &t1[9..],
            &[11.0, 14.0, 17.0, 10.0, 13.0, 16.0, 9.0, 12.0, 15.0]
        );
        assert_eq!(quarter_turn(&x, 3, 2), quarter_turn(&t1, 3, 1));
        assert_eq!(
            quarter_turn(&x, 3, 3),
            quarter_turn(&quarter_turn(&x, 3, 2), 3, 1)
        );
        assert_eq!(quarter_turn(&quarter_turn(&x, 3, 3), 3, 1), x);
        assert_eq!(quarter_turn(&x, 3, 0), x);
    }

    #[test]
    fn squash_downscale_averages_without_rounding() {
        // 4x1 -> 2x2 (size 2): horizontally 4 -> 2 with weights 3/7,3/7,1/7 / 1/7,3/7,3/7,
        // vertically 1 -> 2 replicates the row.
        let mut img = RgbImage::new(4, 1);
        for (x, v) in [10u8, 20, 30, 41].into_iter().enumerate() {
            img.put_pixel(x as u32, 0, image::Rgb([v, v, v]));
        }
        let out = resize(&img, 2);
        let left = (10.0 * 3.0 + 20.0 * 3.0 + 30.0) / 7.0; // 17.142857: not rounded to 17
        let right = (20.0 + 30.0 * 3.0 + 41.0 * 3.0) / 7.0;
        for (i, e) in [left, right, left, right].into_iter().enumerate() {
            assert!(
                (out[i * 3] - e as f32).abs() < 1e-4,
                "{i}: {} vs {e}",
                out[i * 3]
            );
            assert_eq!(out[i * 3], out[i * 3 + 2]);
        }
    }
}
