//! Network configuration: one plain struct, named presets.

use serde::{Deserialize, Serialize};

/// Which fusion task a network is built for (decides input streams and head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Infrared + visible fusion: inputs `vis_y` and `ir`, output fused Y.
    Ivif,
    /// Pan-sharpening (SHIP_NETWORK.md §4): the MS image upsampled by `ratio` is the main
    /// stream, PAN the modulating one; the output is a residual added to the upsampled MS.
    Pan {
        /// Multispectral bands in and out.
        bands: usize,
        /// PAN / MS size ratio.
        ratio: usize,
    },
}

impl Task {
    /// The name written to the ONNX `task` metadata (what the runtime checks).
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Ivif => ship_edge::model::meta::TASK_IVIF,
            Task::Pan { .. } => ship_edge::model::meta::TASK_PANSHARPEN,
        }
    }

    /// Channels of the main stream's input and of the output: the visible Y (1) or the MS bands.
    pub fn bands(self) -> usize {
        match self {
            Task::Ivif => 1,
            Task::Pan { bands, .. } => bands,
        }
    }

    /// Size ratio between the modulating and the main input (1 for IVIF).
    pub fn ratio(self) -> usize {
        match self {
            Task::Ivif => 1,
            Task::Pan { ratio, .. } => ratio,
        }
    }
}

/// The pan-sharpening task of the shipped Landsat-7 data: 6 bands, ratio 2.
pub const LANDSAT7: Task = Task::Pan { bands: 6, ratio: 2 };

/// SHIP / SHIP++ configuration. `Default` is the paper-size SHIP-IVIF network
/// (SHIP_NETWORK.md §2: C = 16, L = 3, N = 4), whose parameter names match the official checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShipConfig {
    pub task: Task,
    /// Feature width C of each stream (the channel branch runs at 2C).
    pub width: usize,
    /// Number of SHIP blocks L.
    pub blocks: usize,
    /// Interaction orders N, in both the spatial and the channel branch (>= 1).
    pub orders: usize,
    /// EdgeBlocks in each feature extractor.
    pub edge_blocks: usize,
    /// Growth (hidden width) of the InvBlocks' DenseBlocks.
    pub growth: usize,
    /// Post-process each block's channel branch with an InvBlock before its 1x1 conv
    /// (SHIP does; the edge preset replaces it by the 1x1 conv alone).
    pub channel_inv_block: bool,
    /// SHIP++: order-k attention/modulator computed from all earlier orders.
    pub cross_order_attention: bool,
    /// SHIP++: aggregate every order's result, not only the last one.
    pub cross_order_integration: bool,
    /// SHIP++: residual paths carry each order's input into its output.
    pub residual_memory: bool,
}

impl Default for ShipConfig {
    fn default() -> Self {
        Self::ship()
    }
}

/// A preset name that [`ShipConfig::preset`] does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown preset `{name}`: choose one of {}", ShipConfig::preset_names().join(", "))]
pub struct UnknownPreset {
    pub name: String,
}

/// A preset constructor.
pub type Preset = fn() -> ShipConfig;

/// The named presets `ship-tools` accepts, with their constructors.
pub const PRESETS: &[(&str, Preset)] = &[
    ("ship", ShipConfig::ship),
    ("ship++", ShipConfig::ship_pp),
    ("edge", ShipConfig::edge),
    ("rt", ShipConfig::rt),
    ("pan", ShipConfig::pan),
    ("pan-edge", ShipConfig::pan_edge),
    ("pan-edge-x4", ShipConfig::pan_edge_x4),
];

/// Separates a preset name from the SHIP++ mechanisms it switches off (`ship++-no-memory`).
pub const ABLATION_SEPARATOR: &str = "-no-";

/// Gives the flag of one SHIP++ mechanism in a configuration.
pub type MechanismFlag = fn(&mut ShipConfig) -> &mut bool;

/// The SHIP++ mechanisms a preset name can switch off, with the flag each one names.
pub const ABLATIONS: &[(&str, MechanismFlag)] = &[
    ("attention", |c| &mut c.cross_order_attention),
    ("integration", |c| &mut c.cross_order_integration),
    ("memory", |c| &mut c.residual_memory),
];

impl ShipConfig {
    /// SHIP for IVIF exactly as released (CVPR 2024).
    pub fn ship() -> Self {
        Self {
            task: Task::Ivif,
            width: 16,
            blocks: 3,
            orders: 4,
            edge_blocks: 2,
            growth: 16,
            channel_inv_block: true,
            cross_order_attention: false,
            cross_order_integration: false,
            residual_memory: false,
        }
    }

    /// SHIP++ (TPAMI 2025): SHIP plus the three cross-order mechanisms, each a switch.
    pub fn ship_pp() -> Self {
        Self {
            cross_order_attention: true,
            cross_order_integration: true,
            residual_memory: true,
            ..Self::ship()
        }
    }

    /// Narrow, shallow SHIP for ARM boards (<= 0.06 MMAC per pixel).
    pub fn edge() -> Self {
        Self {
            width: 8,
            blocks: 2,
            orders: 3,
            edge_blocks: 1,
            growth: 8,
            channel_inv_block: false,
            ..Self::ship()
        }
    }

    /// Real-time SHIP (<= 8 kMAC per pixel, so its int8 form can run 640x512 at 30 fps on two
    /// x86 cores): the narrowest width the even splits allow, one SHIP block with an order-1 FFT
    /// interaction and one gated higher order, and the edge preset's light channel branch.
    pub fn rt() -> Self {
        Self {
            width: 4,
            blocks: 1,
            orders: 2,
            growth: 4,
            ..Self::edge()
        }
    }

    /// SHIP for pan-sharpening (SHIP_NETWORK.md §4) at the paper's width, for the Landsat-7
    /// data (6 bands, ratio 2; [`ShipConfig::with_task`] changes both).
    pub fn pan() -> Self {
        Self {
            task: LANDSAT7,
            ..Self::ship()
        }
    }

    /// The edge preset for pan-sharpening.
    pub fn pan_edge() -> Self {
        Self {
            task: LANDSAT7,
            ..Self::edge()
        }
    }

    /// The edge preset for 4-band, ratio-4 pan-sharpening (R, G, B, NIR: the WorldView /
    /// QuickBird / GF-2 setting; trained on Landsat-7 bands 1-4 made ratio 4 by degradation).
    pub fn pan_edge_x4() -> Self {
        Self {
            task: Task::Pan { bands: 4, ratio: 4 },
            ..Self::edge()
        }
    }

    /// The same network for another task (band count, ratio).
    pub fn with_task(self, task: Task) -> Self {
        Self { task, ..self }
    }

    /// Looks a preset up by name. A name may end in `-no-MECH` suffixes that switch one SHIP++
    /// mechanism off each (`ship++-no-attention`, `ship++-no-integration`, `ship++-no-memory`,
    /// see [`ABLATIONS`]), so that ablation runs and their exports are named like any preset.
    pub fn preset(name: &str) -> Option<Self> {
        let mut parts = name.split(ABLATION_SEPARATOR);
        let base = parts.next()?;
        let mut cfg = PRESETS.iter().find(|(n, _)| *n == base).map(|(_, f)| f())?;
        for mechanism in parts {
            let (_, switch) = ABLATIONS.iter().find(|(n, _)| *n == mechanism)?;
            let flag = switch(&mut cfg);
            if !*flag {
                // Switching off what the preset does not have would name the same network twice.
                return None;
            }
            *flag = false;
        }
        Some(cfg)
    }

    /// [`ShipConfig::preset`], with an error that lists the names it knows.
    pub fn named(name: &str) -> Result<Self, UnknownPreset> {
        Self::preset(name).ok_or_else(|| UnknownPreset {
            name: name.to_string(),
        })
    }

    /// Names of all presets, with the ablation suffixes, for error messages.
    pub fn preset_names() -> Vec<String> {
        let mut names: Vec<String> = PRESETS.iter().map(|(n, _)| n.to_string()).collect();
        names.extend(
            ABLATIONS
                .iter()
                .map(|(m, _)| format!("ship++{ABLATION_SEPARATOR}{m}")),
        );
        names
    }

    /// Checks that the sizes fit together (even splits, at least one order and block).
    pub fn validate(&self) -> Result<(), String> {
        if self.width < 4 || !self.width.is_multiple_of(4) {
            return Err(format!(
                "width {} must be a multiple of 4 (>= 4)",
                self.width
            ));
        }
        if self.blocks == 0 || self.orders == 0 || self.edge_blocks == 0 {
            return Err("blocks, orders and edge_blocks must be >= 1".into());
        }
        if self.growth < 2 || !self.growth.is_multiple_of(2) {
            return Err(format!("growth {} must be even (>= 2)", self.growth));
        }
        if let Task::Pan { bands, ratio } = self.task
            && (bands == 0 || ratio < 2)
        {
            return Err(format!(
                "pan-sharpening needs at least 1 band and a ratio of at least 2 (got {bands} bands, ratio {ratio})"
            ));
        }
        if !(self.blocks * self.width).is_multiple_of(2) {
            return Err("blocks * width must be even (the top InvBlock splits it in half)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ablation_suffixes_switch_single_mechanisms_off() {
        let c = ShipConfig::preset("ship++-no-integration").unwrap();
        assert!(c.cross_order_attention && !c.cross_order_integration && c.residual_memory);
        let all_off = ShipConfig::preset("ship++-no-attention-no-integration-no-memory").unwrap();
        assert_eq!(all_off, ShipConfig::ship());
    }

    #[test]
    fn tasks_serialise_compatibly_and_pan_presets_validate() {
        // Run directories and checkpoints written before the pan variant say `"task":"ivif"`.
        let ivif: ShipConfig =
            serde_json::from_str(&serde_json::to_string(&ShipConfig::edge()).unwrap()).unwrap();
        assert_eq!(ivif, ShipConfig::edge());
        assert!(
            serde_json::to_string(&ShipConfig::edge())
                .unwrap()
                .contains(r#""task":"ivif""#)
        );
        let pan = ShipConfig::preset("pan-edge").unwrap();
        let json = serde_json::to_string(&pan).unwrap();
        assert!(
            json.contains(r#""task":{"pan":{"bands":6,"ratio":2}}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<ShipConfig>(&json).unwrap(), pan);
        assert_eq!(
            (pan.task.bands(), pan.task.ratio(), pan.task.as_str()),
            (6, 2, "pansharpen")
        );
        let bad = pan.with_task(Task::Pan { bands: 4, ratio: 1 });
        assert!(bad.validate().unwrap_err().contains("ratio"));
    }

    #[test]
    fn ablation_suffixes_reject_what_the_preset_lacks() {
        assert!(ShipConfig::preset("ship-no-memory").is_none());
        assert!(ShipConfig::preset("ship++-no-memory-no-memory").is_none());
        assert!(ShipConfig::preset("ship++-no-dropout").is_none());
        assert!(ShipConfig::preset("ship++-").is_none());
    }
}
