//! GeoTIFF georeferencing carried from the inputs to a pan-sharpened output: the model-space
//! tags (pixel scale, tie points, transformation), the GeoKey directory with its double and
//! ASCII parameters, and GDAL's no-data value. They are copied as they are (the output's grid
//! is the PAN's), or rescaled from the MS grid when only the MS has them.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tiff::decoder::Decoder;
use tiff::tags::Tag;

use super::io::DecodeError;

/// The georeferencing tags of one TIFF image (all absent for a plain TIFF).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoTags {
    /// `ModelPixelScaleTag` (33550): (sx, sy, sz).
    pub pixel_scale: Option<Vec<f64>>,
    /// `ModelTiepointTag` (33922): (i, j, k, x, y, z) per tie point.
    pub tiepoints: Option<Vec<f64>>,
    /// `ModelTransformationTag` (34264): a row-major 4x4 raster-to-model matrix.
    pub transformation: Option<Vec<f64>>,
    /// `GeoKeyDirectoryTag` (34735).
    pub geo_keys: Option<Vec<u16>>,
    /// `GeoDoubleParamsTag` (34736).
    pub geo_doubles: Option<Vec<f64>>,
    /// `GeoAsciiParamsTag` (34737).
    pub geo_ascii: Option<String>,
    /// `GDAL_NODATA` (42113).
    pub nodata: Option<String>,
}

impl GeoTags {
    /// Whether the image carries no georeferencing at all.
    pub fn is_empty(&self) -> bool {
        *self == GeoTags::default()
    }

    /// Reads the tags of the first image of `path`. A file that is not a TIFF has none.
    pub fn read(path: &Path) -> Result<GeoTags, DecodeError> {
        let io_err = |source: std::io::Error| DecodeError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let Ok(mut dec) = Decoder::new(BufReader::new(file)) else {
            return Ok(GeoTags::default());
        };
        let corrupt = |e: tiff::TiffError| DecodeError::Unsupported {
            path: path.to_path_buf(),
            format: "TIFF",
            what: format!("unreadable GeoTIFF tags ({e})"),
        };
        let mut f64s = |tag| -> Result<Option<Vec<f64>>, DecodeError> {
            dec.find_tag(tag)
                .map_err(corrupt)?
                .map(|v| v.into_f64_vec().map_err(corrupt))
                .transpose()
        };
        let pixel_scale = f64s(Tag::ModelPixelScaleTag)?;
        let tiepoints = f64s(Tag::ModelTiepointTag)?;
        let transformation = f64s(Tag::ModelTransformationTag)?;
        let geo_doubles = f64s(Tag::GeoDoubleParamsTag)?;
        let geo_keys = dec
            .find_tag(Tag::GeoKeyDirectoryTag)
            .map_err(corrupt)?
            .map(|v| v.into_u16_vec().map_err(corrupt))
            .transpose()?;
        let mut text = |tag| -> Result<Option<String>, DecodeError> {
            dec.find_tag(tag)
                .map_err(corrupt)?
                .map(|v| v.into_string().map_err(corrupt))
                .transpose()
        };
        Ok(GeoTags {
            pixel_scale,
            tiepoints,
            transformation,
            geo_keys,
            geo_doubles,
            geo_ascii: text(Tag::GeoAsciiParamsTag)?,
            nodata: text(Tag::GdalNodata)?,
        })
    }

    /// The same georeferencing for a grid `factor` times finer (the PAN grid of an MS): pixel
    /// sizes divided by `factor`, tie-point raster positions multiplied by it (pixel corners
    /// stay where they are), the transformation's raster columns divided by it.
    pub fn refined(&self, factor: usize) -> GeoTags {
        let f = factor as f64;
        let mut out = self.clone();
        if let Some(s) = &mut out.pixel_scale {
            s.iter_mut().take(2).for_each(|v| *v /= f);
        }
        if let Some(t) = &mut out.tiepoints {
            for point in t.chunks_mut(6) {
                point.iter_mut().take(2).for_each(|v| *v *= f);
            }
        }
        if let Some(m) = &mut out.transformation
            && m.len() == 16
        {
            for row in 0..3 {
                m[row * 4] /= f;
                m[row * 4 + 1] /= f;
            }
        }
        out
    }

    /// Writes the tags present into an image directory being encoded.
    pub(crate) fn write<W, K>(
        &self,
        dir: &mut tiff::encoder::DirectoryEncoder<'_, W, K>,
    ) -> tiff::TiffResult<()>
    where
        W: std::io::Write + std::io::Seek,
        K: tiff::encoder::TiffKind,
    {
        for (tag, v) in [
            (Tag::ModelPixelScaleTag, &self.pixel_scale),
            (Tag::ModelTiepointTag, &self.tiepoints),
            (Tag::ModelTransformationTag, &self.transformation),
            (Tag::GeoDoubleParamsTag, &self.geo_doubles),
        ] {
            if let Some(v) = v {
                dir.write_tag(tag, &v[..])?;
            }
        }
        if let Some(k) = &self.geo_keys {
            dir.write_tag(Tag::GeoKeyDirectoryTag, &k[..])?;
        }
        for (tag, v) in [
            (Tag::GeoAsciiParamsTag, &self.geo_ascii),
            (Tag::GdalNodata, &self.nodata),
        ] {
            if let Some(v) = v {
                dir.write_tag(tag, v.as_str())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refining_halves_pixels_and_keeps_corners() {
        let ms = GeoTags {
            pixel_scale: Some(vec![30.0, 30.0, 0.0]),
            tiepoints: Some(vec![1.0, 2.0, 0.0, 500_000.0, 4_000_000.0, 0.0]),
            transformation: Some(vec![
                30.0,
                0.0,
                0.0,
                500_000.0,
                0.0,
                -30.0,
                0.0,
                4_000_000.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                1.0,
            ]),
            ..GeoTags::default()
        };
        let pan = ms.refined(2);
        assert_eq!(pan.pixel_scale, Some(vec![15.0, 15.0, 0.0]));
        assert_eq!(pan.tiepoints.as_ref().unwrap()[..2], [2.0, 4.0]);
        let m = pan.transformation.unwrap();
        assert_eq!(
            (m[0], m[3], m[5], m[7]),
            (15.0, 500_000.0, -15.0, 4_000_000.0)
        );
        assert!(GeoTags::default().is_empty() && !ms.is_empty());
    }
}
