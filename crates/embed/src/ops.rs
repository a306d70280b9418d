//! Numeric kernels of the BERT forward: SGEMM (via the `gemm` crate), bias + exact-erf GELU,
//! residual layer norm, and row softmax. Element-wise kernels are written as plain loops over
//! fixed-width lanes so LLVM vectorises them; on x86-64 an AVX2+FMA copy is selected at run time.

use gemm::Parallelism;

/// Row-major matrix view helper for [`sgemm`]: `rows × cols`, row stride `ld` (elements).
#[derive(Clone, Copy)]
pub(crate) struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub ld: usize,
}

impl Mat {
    pub(crate) fn new(rows: usize, cols: usize, ld: usize) -> Self {
        Self { rows, cols, ld }
    }

    /// Elements a slice must hold to contain this view.
    fn span(self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.ld + self.cols
        }
    }
}

/// How `sgemm` treats the second operand.
#[derive(Clone, Copy)]
pub(crate) enum Rhs {
    /// `b` is stored as given (`k × n` row-major view).
    Plain,
    /// `b` is stored transposed (`n × k` row-major view), i.e. we multiply by its transpose.
    Transposed,
}

/// `c = (accumulate ? c : 0) + scale · a · op(b)`, with row-major views into slices.
///
/// Panics if a view does not fit its slice or the shapes disagree; both are programming errors
/// (shapes come from validated model weights), never input-dependent.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    c: &mut [f32],
    cm: Mat,
    accumulate: bool,
    a: &[f32],
    am: Mat,
    b: &[f32],
    bm: Mat,
    rhs: Rhs,
    scale: f32,
    threads: usize,
) {
    let (k, n) = match rhs {
        Rhs::Plain => (bm.rows, bm.cols),
        Rhs::Transposed => (bm.cols, bm.rows),
    };
    assert_eq!(am.cols, k, "sgemm: inner dimensions differ");
    assert_eq!((cm.rows, cm.cols), (am.rows, n), "sgemm: output shape");
    assert!(c.len() >= cm.span() && a.len() >= am.span() && b.len() >= bm.span());
    if cm.rows == 0 || n == 0 {
        return;
    }
    let (b_cs, b_rs) = match rhs {
        Rhs::Plain => (1, bm.ld as isize),
        Rhs::Transposed => (bm.ld as isize, 1),
    };
    let par = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above guarantee every view lies inside its slice; `c` is a unique
    // borrow, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            cm.rows,
            n,
            k,
            c.as_mut_ptr(),
            1,
            cm.ld as isize,
            accumulate,
            a.as_ptr(),
            1,
            am.ld as isize,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            scale,
            false,
            false,
            false,
            par,
        );
    }
}

/// Runs `$generic(args)` through an AVX2+FMA-compiled copy when the CPU has it.
macro_rules! dispatch {
    ($avx:ident, $generic:ident, ($($arg:ident : $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx($($arg: $ty),*) {
            $generic($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the copy was compiled for.
                unsafe { $avx($($arg),*) };
                return;
            }
        }
        $generic($($arg),*)
    };
}

const LANES: usize = 8;

/// Fills each `width`-wide row of `out` with `bias` (the starting value of a biased GEMM).
pub(crate) fn fill_rows(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
}

/// erf(x) for f32 by a rational approximation on [-4, 4] (erf(±4) = ±1 in f32); absolute error
/// below 1e-6, see the unit test against the series below.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_600_2e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_5e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

#[inline(always)]
fn bias_gelu_generic(rows: &mut [f32], bias: &[f32]) {
    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    for row in rows.chunks_exact_mut(bias.len()) {
        let mut rc = row.chunks_exact_mut(LANES);
        let mut bc = bias.chunks_exact(LANES);
        for (r, b) in (&mut rc).zip(&mut bc) {
            for i in 0..LANES {
                let x = r[i] + b[i];
                r[i] = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
            }
        }
        for (r, b) in rc.into_remainder().iter_mut().zip(bc.remainder()) {
            let x = *r + *b;
            *r = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
        }
    }
}

/// In place: `x = gelu(x + bias)` per row, with BERT's exact (erf) GELU.
pub(crate) fn bias_gelu(rows: &mut [f32], bias: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA.
            unsafe { avx2::bias_gelu(rows, bias) };
            return;
        }
    }
    bias_gelu_generic(rows, bias)
}

#[inline(always)]
fn sum_lanes(v: [f32; LANES]) -> f32 {
    ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
}

#[inline(always)]
fn bias_layernorm_generic(rows: &mut [f32], bias: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let w = bias.len();
    let inv_w = 1.0 / w as f32;
    for row in rows.chunks_exact_mut(w) {
        let mut acc = [0.0f32; LANES];
        let mut rc = row.chunks_exact_mut(LANES);
        let mut bc = bias.chunks_exact(LANES);
        for (r, b) in (&mut rc).zip(&mut bc) {
            for i in 0..LANES {
                r[i] += b[i];
                acc[i] += r[i];
            }
        }
        let mut tail = 0.0;
        for (r, b) in rc.into_remainder().iter_mut().zip(bc.remainder()) {
            *r += *b;
            tail += *r;
        }
        let mean = (sum_lanes(acc) + tail) * inv_w;
        let mut acc = [0.0f32; LANES];
        let mut rc = row.chunks_exact(LANES);
        for r in &mut rc {
            for i in 0..LANES {
                let d = r[i] - mean;
                acc[i] += d * d;
            }
        }
        let mut tail = 0.0;
        for r in rc.remainder() {
            let d = *r - mean;
            tail += d * d;
        }
        let var = (sum_lanes(acc) + tail) * inv_w;
        let rstd = 1.0 / (var + eps).sqrt();
        for ((r, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *r = (*r - mean) * rstd * *g + *b;
        }
    }
}

/// In place per row: `x = layernorm(x + bias) · gamma + beta` (biased variance, like PyTorch).
pub(crate) fn bias_layernorm(
    rows: &mut [f32],
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    dispatch!(
        bias_layernorm_avx2,
        bias_layernorm_generic,
        (rows: &mut [f32], bias: &[f32], gamma: &[f32], beta: &[f32], eps: f32)
    );
}

/// e^x for x ≤ 0 (softmax after subtracting the row maximum); relative error about 2e-7.
#[inline(always)]
fn exp_nonpos(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting rounds to an integer
    let x = x.max(-87.0);
    // k holds round(x·log2 e) in its low mantissa bits; integer ops on the bits (not an `as`
    // cast, which LLVM does not vectorise) recover it and build 2^n.
    let k = x * LOG2E + ROUND;
    let n = k - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let scale = f32::from_bits(k.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    p * scale
}

#[inline(always)]
fn softmax_rows_generic(rows: &mut [f32], width: usize) {
    for row in rows.chunks_exact_mut(width) {
        let mut mx = [f32::NEG_INFINITY; LANES];
        let mut rc = row.chunks_exact(LANES);
        for r in &mut rc {
            for i in 0..LANES {
                mx[i] = mx[i].max(r[i]);
            }
        }
        let mut m = rc
            .remainder()
            .iter()
            .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        for v in mx {
            m = m.max(v);
        }
        let mut acc = [0.0f32; LANES];
        let mut rc = row.chunks_exact_mut(LANES);
        for r in &mut rc {
            for i in 0..LANES {
                r[i] = exp_nonpos(r[i] - m);
                acc[i] += r[i];
            }
        }
        let mut tail = 0.0;
        for r in rc.into_remainder() {
            *r = exp_nonpos(*r - m);
            tail += *r;
        }
        let inv = 1.0 / (sum_lanes(acc) + tail);
        for r in row.iter_mut() {
            *r *= inv;
        }
    }
}

/// In place: softmax of each `width`-wide row.
pub(crate) fn softmax_rows(rows: &mut [f32], width: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA.
            unsafe { avx2::softmax_rows(rows, width) };
            return;
        }
    }
    softmax_rows_generic(rows, width)
}

/// Hand-vectorised AVX2+FMA softmax: the exponential dominates attention outside the GEMMs
/// and LLVM's auto-vectorisation of the portable version only reaches 4 lanes without FMA.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Eight lanes of [`super::exp_nonpos`], same constants and error.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn exp8(x: __m256) -> __m256 {
        const ROUND: f32 = 12_582_912.0;
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
        let k = _mm256_fmadd_ps(
            x,
            _mm256_set1_ps(std::f32::consts::LOG2_E),
            _mm256_set1_ps(ROUND),
        );
        let n = _mm256_sub_ps(k, _mm256_set1_ps(ROUND));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_145_75), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428_606_8e-6), r);
        let mut p = _mm256_set1_ps(1.0 / 5040.0);
        for c in [
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
            1.0,
            1.0,
        ] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let bits = _mm256_sub_epi32(
            _mm256_castps_si256(k),
            _mm256_set1_epi32(ROUND.to_bits() as i32),
        );
        let scale = _mm256_slli_epi32::<23>(_mm256_add_epi32(bits, _mm256_set1_epi32(127)));
        _mm256_mul_ps(p, _mm256_castsi256_ps(scale))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hmax(v: __m256) -> f32 {
        let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_max_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Eight lanes of [`super::erf`], same coefficients.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn erf8(x: __m256) -> __m256 {
        let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-4.0)), _mm256_set1_ps(4.0));
        let x2 = _mm256_mul_ps(x, x);
        let mut p = _mm256_set1_ps(-2.726_142_3e-10);
        for c in [
            2.770_681_4e-8,
            -2.101_024e-6,
            -5.692_506_4e-5,
            -7.349_906_3e-4,
            -2.954_600_2e-3,
            -1.609_603_3e-2,
        ] {
            p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(c));
        }
        p = _mm256_mul_ps(p, x);
        let mut q = _mm256_set1_ps(-1.456_607_2e-5);
        for c in [
            -2.133_740_6e-4,
            -1.682_827e-3,
            -7.373_329_5e-3,
            -1.426_474e-2,
        ] {
            q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(c));
        }
        _mm256_div_ps(p, q)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn bias_gelu(rows: &mut [f32], bias: &[f32]) {
        let width = bias.len();
        let vec_end = width / 8 * 8;
        let half = _mm256_set1_ps(0.5);
        let one = _mm256_set1_ps(1.0);
        let rsqrt2 = _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
        for row in rows.chunks_exact_mut(width) {
            let ptr = row.as_mut_ptr();
            for i in (0..vec_end).step_by(8) {
                // SAFETY: i + 8 <= vec_end <= width = row.len() = bias.len().
                let x = unsafe {
                    _mm256_add_ps(
                        _mm256_loadu_ps(ptr.add(i)),
                        _mm256_loadu_ps(bias.as_ptr().add(i)),
                    )
                };
                let e = erf8(_mm256_mul_ps(x, rsqrt2));
                let y = _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, e));
                unsafe { _mm256_storeu_ps(ptr.add(i), y) };
            }
            for (v, b) in row[vec_end..].iter_mut().zip(&bias[vec_end..]) {
                let x = *v + *b;
                *v = 0.5 * x * (1.0 + super::erf(x * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn softmax_rows(rows: &mut [f32], width: usize) {
        let vec_end = width / 8 * 8;
        for row in rows.chunks_exact_mut(width) {
            let ptr = row.as_mut_ptr();
            // SAFETY (all loads/stores below): offsets i..i+8 with i + 8 <= vec_end <= width.
            let mut vm = _mm256_set1_ps(f32::NEG_INFINITY);
            for i in (0..vec_end).step_by(8) {
                vm = _mm256_max_ps(vm, unsafe { _mm256_loadu_ps(ptr.add(i)) });
            }
            let m = row[vec_end..].iter().fold(hmax(vm), |a, &b| a.max(b));
            let vmax = _mm256_set1_ps(m);
            let mut vs = _mm256_setzero_ps();
            for i in (0..vec_end).step_by(8) {
                let e = exp8(_mm256_sub_ps(unsafe { _mm256_loadu_ps(ptr.add(i)) }, vmax));
                unsafe { _mm256_storeu_ps(ptr.add(i), e) };
                vs = _mm256_add_ps(vs, e);
            }
            let mut tail = 0.0;
            for v in &mut row[vec_end..] {
                *v = super::exp_nonpos(*v - m);
                tail += *v;
            }
            let inv = 1.0 / (hsum(vs) + tail);
            let vinv = _mm256_set1_ps(inv);
            for i in (0..vec_end).step_by(8) {
                let v = _mm256_mul_ps(unsafe { _mm256_loadu_ps(ptr.add(i)) }, vinv);
                unsafe { _mm256_storeu_ps(ptr.add(i), v) };
            }
            for v in &mut row[vec_end..] {
                *v *= inv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Maclaurin series (|x| ≤ 3) or asymptotic complement, in f64.
    fn erf_ref(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc(x) ~ e^{-x²}/(x√π) (1 - 1/(2x²) + 3/(4x⁴)); < 1e-5 here, so erf ≈ ±(1 - tiny).
            let a = x.abs();
            let erfc = (-a * a).exp() / (a * std::f64::consts::PI.sqrt())
                * (1.0 - 1.0 / (2.0 * a * a) + 3.0 / (4.0 * a.powi(4)));
            return x.signum() * (1.0 - erfc);
        }
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 || n < 3.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_matches_series() {
        let mut worst = 0.0f64;
        for i in -6000..=6000 {
            let x = i as f64 / 1000.0;
            worst = worst.max((erf(x as f32) as f64 - erf_ref(x)).abs());
        }
        assert!(worst < 1e-6, "max erf error {worst}");
    }

    #[test]
    fn bias_gelu_matches_exact_formula() {
        let width = 1541; // vector body plus a tail
        let bias: Vec<f32> = (0..width).map(|i| (i % 11) as f32 * 0.05 - 0.25).collect();
        let src: Vec<f32> = (0..width * 2)
            .map(|i| (i as f32 - width as f32) * 0.006)
            .collect();
        let mut got = src.clone();
        bias_gelu(&mut got, &bias);
        let mut generic = src.clone();
        bias_gelu_generic(&mut generic, &bias);
        for (i, (g, gg)) in got.iter().zip(&generic).enumerate() {
            let x = f64::from(src[i] + bias[i % width]);
            let want = 0.5 * x * (1.0 + erf_ref(x / std::f64::consts::SQRT_2));
            assert!(
                (f64::from(*g) - want).abs() < 2e-6,
                "gelu({x}) = {g}, want {want}"
            );
            assert!(
                (f64::from(*gg) - want).abs() < 2e-6,
                "generic gelu({x}) = {gg}"
            );
        }
    }

    #[test]
    fn exp_matches_std() {
        let mut worst = 0.0f64;
        for i in 0..=87_000 {
            let x = -(i as f32) / 1000.0;
            let want = (x as f64).exp();
            let rel = ((exp_nonpos(x) as f64) - want).abs() / want;
            worst = worst.max(rel);
        }
        assert!(worst < 1e-6, "max exp relative error {worst}");
    }

    #[test]
    fn softmax_and_layernorm_match_naive() {
        for width in [3, 21, 64, 250] {
            check_softmax(width);
        }
        let width = 21; // not a multiple of the lane count
        let src: Vec<f32> = (0..width * 3)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.7)
            .collect();
        let bias: Vec<f32> = (0..width).map(|i| i as f32 * 0.1).collect();
        let gamma: Vec<f32> = (0..width).map(|i| 1.0 + i as f32 * 0.01).collect();
        let beta: Vec<f32> = (0..width).map(|i| -(i as f32) * 0.02).collect();
        let mut got = src.clone();
        bias_layernorm(&mut got, &bias, &gamma, &beta, 1e-12);
        for (row, want) in got.chunks(width).zip(src.chunks(width)) {
            let x: Vec<f64> = want
                .iter()
                .zip(&bias)
                .map(|(a, b)| (a + b) as f64)
                .collect();
            let mean = x.iter().sum::<f64>() / width as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / width as f64;
            for i in 0..width {
                let w = (x[i] - mean) / (var + 1e-12).sqrt() * gamma[i] as f64 + beta[i] as f64;
                assert!((row[i] as f64 - w).abs() < 1e-5, "{} vs {w}", row[i]);
            }
        }
    }

    fn check_softmax(width: usize) {
        let src: Vec<f32> = (0..width * 3)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.7 + (i % 7) as f32 * 3.0)
            .collect();
        let mut got = src.clone();
        softmax_rows(&mut got, width);
        let mut generic = src.clone();
        softmax_rows_generic(&mut generic, width);
        for ((row, grow), want) in got
            .chunks(width)
            .zip(generic.chunks(width))
            .zip(src.chunks(width))
        {
            let m = want.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let s: f64 = want.iter().map(|v| ((v - m) as f64).exp()).sum();
            for ((g, gg), v) in row.iter().zip(grow).zip(want) {
                let w = ((v - m) as f64).exp() / s;
                assert!(
                    (*g as f64 - w).abs() < 1e-6 * w.max(1e-3),
                    "width {width}: {g} vs {w}"
                );
                assert!(
                    (*gg as f64 - w).abs() < 1e-6 * w.max(1e-3),
                    "generic, width {width}"
                );
            }
        }
    }

    #[test]
    fn sgemm_matches_naive_with_transpose_and_strides() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * 9).map(|i| (i % 13) as f32 - 6.0).collect(); // ld 9
        let b: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 * 0.5).collect(); // n×k
        let mut c = vec![1.0f32; m * n];
        sgemm(
            &mut c,
            Mat::new(m, n, n),
            true,
            &a,
            Mat::new(m, k, 9),
            &b,
            Mat::new(n, k, k),
            Rhs::Transposed,
            2.0,
            1,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f32 =
                    1.0 + 2.0 * (0..k).map(|p| a[i * 9 + p] * b[j * k + p]).sum::<f32>();
                assert!((c[i * n + j] - want).abs() < 1e-4);
            }
        }
    }
}
