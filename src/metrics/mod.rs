//! Fusion quality metrics: infrared-visible ([`ivif`]) and pan-sharpening ([`pan`]), with the
//! exact definitions and conventions of `shared/notes/METRICS.md`, and the mean-rank summary
//! papers use to compare methods ([`rank`]). Never imports tract.

pub mod ivif;
pub mod pan;
pub mod rank;

/// Which way a metric improves; decides the rank order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Larger values are better (EN, SSIM, Q, QNR, ...).
    Higher,
    /// Smaller values are better (Nabf, SAM, ERGAS, D_lambda, D_s, ...).
    Lower,
}

impl Better {
    /// `↑` or `↓`, as tables mark a metric's direction.
    pub fn arrow(self) -> &'static str {
        match self {
            Better::Higher => "↑",
            Better::Lower => "↓",
        }
    }
}
