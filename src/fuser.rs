//! The infrared + visible fusion front door: [`Fuser`] runs an IVIF model on a decoded image
//! pair with the SHIP colour handling around it.

use std::path::Path;
use std::time::Duration;

use tract_linalg::multithread::{Executor, multithread_tract_scope};

use crate::error::{Error, Result};
use crate::imaging::{Planes, color};
use crate::model::{IvifModel, IvifSession, ModelInfo};

/// Options for a [`Fuser`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuseOptions {
    /// Worker threads for tract's kernels (matmul panels, element-wise ops). 0 or 1 runs
    /// single-threaded. Default: the number of available cores.
    pub threads: usize,
}

impl Default for FuseOptions {
    fn default() -> FuseOptions {
        FuseOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// The fused result: the size of the inputs, grey for a grey visible image, RGB for an RGB
/// one, samples clamped to `[0, 1]`, tagged with the visible image's bit depth.
pub type FusedImage = Planes;

/// Fuses infrared + visible pairs with an IVIF model (`task = ivif`).
///
/// The visible image is split into Y (fed to the network as `vis_y`) and Cr/Cb; the IR
/// image contributes its channel 0 (as `ir`); the network's raw `fused` Y is clamped to
/// `[0, 1]` and merged back with the visible chroma (see [`color`]).
///
/// Load once, fuse many: plans are cached per frame size.
///
/// ```no_run
/// use ship_edge::{Fuser, imaging::{self, Limits}};
/// # fn main() -> ship_edge::Result<()> {
/// let fuser = Fuser::from_onnx("models/ship_edge_ivif.onnx")?;
/// let ir = imaging::io::load("ir.png".as_ref(), &Limits::default())?;
/// let vis = imaging::io::load("vis.png".as_ref(), &Limits::default())?;
/// let fused = fuser.fuse(&ir, &vis)?;
/// imaging::io::save("fused.png".as_ref(), &fused)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Fuser {
    model: IvifModel,
    executor: Executor,
    options: FuseOptions,
}

impl Fuser {
    /// Loads an IVIF model with default options.
    pub fn from_onnx(path: impl AsRef<Path>) -> Result<Fuser> {
        Fuser::with_options(path, FuseOptions::default())
    }

    /// Loads an IVIF model (checking its contract and task) with `options`.
    pub fn with_options(path: impl AsRef<Path>, options: FuseOptions) -> Result<Fuser> {
        let model = IvifModel::load(path.as_ref())?;
        let executor = if options.threads > 1 {
            Executor::multithread_with_name(options.threads, "ship-edge")
        } else {
            Executor::SingleThread
        };
        Ok(Fuser {
            model,
            executor,
            options,
        })
    }

    /// Fuses one pair. `ir` and `vis` must have the same size.
    pub fn fuse(&self, ir: &Planes, vis: &Planes) -> Result<FusedImage> {
        Ok(self.fuse_with_raw(ir, vis)?.0)
    }

    /// Like [`fuse`](Fuser::fuse), also returning the network's raw fused Y (row-major, not
    /// clamped), e.g. to compare runtimes or to keep values outside `[0, 1]`.
    pub fn fuse_with_raw(&self, ir: &Planes, vis: &Planes) -> Result<(FusedImage, Vec<f32>)> {
        let (width, height) = (vis.width(), vis.height());
        if (ir.width(), ir.height()) != (width, height) {
            return Err(Error::SizeMismatch {
                ir_width: ir.width(),
                ir_height: ir.height(),
                vis_width: width,
                vis_height: height,
            });
        }
        let (vis_y, chroma) = color::split_visible(vis);
        let raw = self.fuse_y_raw(color::infrared(ir), &vis_y, width, height)?;
        let image =
            color::merge(&raw, chroma.as_ref(), width, height).with_bit_depth(vis.bit_depth());
        Ok((image, raw))
    }

    /// Runs the network on raw planes (`width * height` samples each, row-major, `[0, 1]`)
    /// and returns the fused Y clamped to `[0, 1]`, as [`fuse`](Fuser::fuse) uses it.
    pub fn fuse_y(
        &self,
        ir: &[f32],
        vis_y: &[f32],
        width: usize,
        height: usize,
    ) -> Result<Vec<f32>> {
        let mut y = self.fuse_y_raw(ir, vis_y, width, height)?;
        y.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        Ok(y)
    }

    /// Like [`fuse_y`](Fuser::fuse_y) but returns the network's output as is (not clamped):
    /// what a parity test against another runtime compares.
    pub fn fuse_y_raw(
        &self,
        ir: &[f32],
        vis_y: &[f32],
        width: usize,
        height: usize,
    ) -> Result<Vec<f32>> {
        check_buffers(ir, vis_y, width, height)?;
        let run = || self.model.run(vis_y, ir, width, height);
        Ok(multithread_tract_scope(self.executor.clone(), run)?)
    }

    /// Runs the network once like [`fuse_y_raw`](Fuser::fuse_y_raw) and adds the time spent
    /// per op type of tract's optimised plan to `times` (see [`IvifModel::profile`]).
    pub fn profile_y(
        &self,
        ir: &[f32],
        vis_y: &[f32],
        width: usize,
        height: usize,
        times: &mut Vec<(String, Duration)>,
    ) -> Result<()> {
        check_buffers(ir, vis_y, width, height)?;
        let run = || self.model.profile(vis_y, ir, width, height, times);
        Ok(multithread_tract_scope(self.executor.clone(), run)?)
    }

    /// Runs one frame of a stream through `session` (from
    /// [`IvifModel::session`](crate::model::IvifModel::session) on [`model`](Fuser::model)) on
    /// this fuser's threads: the raw fused Y into `out`. The planes hold `width * height`
    /// samples of the session's size.
    pub fn fuse_y_session(
        &self,
        session: &mut IvifSession<'_>,
        ir: &[f32],
        vis_y: &[f32],
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let (width, height) = session.size();
        check_buffers(ir, vis_y, width, height)?;
        let run = || session.run(vis_y, ir, out);
        Ok(multithread_tract_scope(self.executor.clone(), run)?)
    }

    /// The model's `metadata_props`, in file order.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.model.info().metadata
    }

    /// What the model file declares (inputs, outputs, metadata, op counts, parameters).
    pub fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    /// The model, for plan-level access (e.g. [`IvifModel::planned_sizes`]).
    pub fn model(&self) -> &IvifModel {
        &self.model
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        self.model.path()
    }

    /// The options it was built with.
    pub fn options(&self) -> &FuseOptions {
        &self.options
    }
}

/// Both planes must hold `width * height` samples.
fn check_buffers(ir: &[f32], vis_y: &[f32], width: usize, height: usize) -> Result<()> {
    let expected = width.checked_mul(height);
    for (name, buf) in [("ir", ir), ("vis_y", vis_y)] {
        if Some(buf.len()) != expected {
            return Err(Error::BufferSize {
                name,
                len: buf.len(),
                width,
                height,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuser_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Fuser>();
    }

    #[test]
    fn default_threads_is_at_least_one() {
        assert!(FuseOptions::default().threads >= 1);
    }
}
