//! Classical fusion baselines, the yardsticks every learned model is compared against:
//! infrared-visible ([`ivif`]) and pan-sharpening ([`pan`]). Never imports tract.

pub mod ivif;
pub mod pan;
