//! Frame sizes for benchmarks: `WxH`, or the name of a real sensor's resolution.

use std::fmt;
use std::str::FromStr;

/// Named sizes of the sensors these models are fed by (thermal cores and common video).
pub const SIZE_PRESETS: &[(&str, usize, usize, &str)] = &[
    ("lepton", 160, 120, "FLIR Lepton 3.x"),
    ("boson320", 320, 256, "FLIR Boson 320"),
    ("vga", 640, 480, "VGA visible cameras"),
    ("boson", 640, 512, "FLIR Boson 640"),
    (
        "sxga",
        1280,
        1024,
        "1280x1024 thermal cores and machine-vision cameras",
    ),
];

/// A frame size, width x height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FrameSize {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl FrameSize {
    /// The FLIR Boson 640's 640x512, the default benchmark size.
    pub const BOSON: FrameSize = FrameSize {
        width: 640,
        height: 512,
    };

    /// Pixels per frame.
    pub fn pixels(self) -> usize {
        self.width * self.height
    }
}

impl fmt::Display for FrameSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// A size that is neither `WxH` nor a preset name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown frame size `{0}`: give WxH (e.g. 640x512) or one of {names}", names = preset_names())]
pub struct BadFrameSize(String);

fn preset_names() -> String {
    SIZE_PRESETS
        .iter()
        .map(|(n, w, h, _)| format!("{n} ({w}x{h})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Frames beyond this many pixels per side are surely a typo (and would not fit in memory).
const MAX_SIDE: usize = 16384;

impl FromStr for FrameSize {
    type Err = BadFrameSize;

    fn from_str(s: &str) -> Result<FrameSize, BadFrameSize> {
        let bad = || BadFrameSize(s.to_string());
        let lower = s.trim().to_ascii_lowercase();
        if let Some(&(_, width, height, _)) = SIZE_PRESETS.iter().find(|p| p.0 == lower) {
            return Ok(FrameSize { width, height });
        }
        let (w, h) = lower.split_once('x').ok_or_else(bad)?;
        let side = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|&v| (1..=MAX_SIDE).contains(&v))
        };
        Ok(FrameSize {
            width: side(w).ok_or_else(bad)?,
            height: side(h).ok_or_else(bad)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_explicit_sizes() {
        assert_eq!("boson".parse(), Ok(FrameSize::BOSON));
        assert_eq!(
            "Lepton".parse::<FrameSize>().unwrap().to_string(),
            "160x120"
        );
        assert_eq!(
            "1280x1024".parse(),
            Ok(FrameSize {
                width: 1280,
                height: 1024
            })
        );
    }

    #[test]
    fn bad_sizes_name_the_choices() {
        for bad in [
            "",
            "640",
            "640x",
            "0x480",
            "x480",
            "640x480x3",
            "-1x2",
            "99999x2",
            "big",
        ] {
            let err = bad.parse::<FrameSize>().unwrap_err().to_string();
            assert!(
                err.contains("give WxH") && err.contains("boson (640x512)"),
                "{bad}: {err}"
            );
        }
    }
}
