//! Building blocks shared by the SHIP modules. Each one runs in candle (`forward`) and emits the
//! same computation as ONNX nodes (`emit`), so the exported graph cannot drift from the network.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::conv_cpu::{ConvParams, conv2d};
use super::norm_cpu::normalize_affine;
use crate::export::graph::{Graph, OpSet, attr_float};
use ship_edge::ops::high_order_gate;

/// A single-input module that runs in candle and emits itself into an ONNX graph.
pub trait Layer {
    /// Runs the module on an NCHW tensor.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
    /// Emits the module's nodes reading `x`; returns the name of its output.
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String>;
}

/// PyTorch's default conv initialisation, uniform(±1/sqrt(fan_in)) for weight and bias.
pub fn torch_default_init(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// Square k x k convolution, stride 1, "same" padding, with bias (fused into the op on CPU).
#[derive(Debug, Clone)]
pub struct Conv {
    pub(crate) weight: Tensor,
    pub(crate) bias: Option<Tensor>,
    pad: usize,
}

impl Conv {
    /// Conv `cin -> cout` with a `k x k` kernel and bias, weights `weight` / `bias` under `vb`.
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, k: usize) -> Result<Self> {
        Self::with_init(vb, cin, cout, k, torch_default_init(cin * k * k))
    }

    /// Same as [`Conv::new`] with an explicit weight initialisation.
    pub fn with_init(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        k: usize,
        init: Init,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((cout, cin, k, k), "weight", init)?;
        let bias = vb.get_with_hints(cout, "bias", torch_default_init(cin * k * k))?;
        Ok(Self {
            weight,
            bias: Some(bias),
            pad: k / 2,
        })
    }

    /// A conv from already computed (e.g. folded) weights.
    pub fn from_weights(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let (_, _, kh, kw) = weight.dims4()?;
        if kh != kw || kh % 2 == 0 {
            candle_core::bail!("only odd square kernels are supported, got {kh}x{kw}");
        }
        Ok(Self {
            weight,
            bias,
            pad: kh / 2,
        })
    }
}

impl Layer for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let p = ConvParams {
            padding: (self.pad, self.pad),
            stride: 1,
        };
        conv2d(x, &self.weight, self.bias.as_ref(), p)
    }

    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let w = g.init_tensor("w", &self.weight)?;
        let b = self
            .bias
            .as_ref()
            .map(|b| g.init_tensor("b", b))
            .transpose()?;
        Ok(g.conv(x, &w, b.as_deref(), self.pad, 1))
    }
}

/// Conv -> ReLU -> Conv (variable names `0` and `2`, as in the official `nn.Sequential`s).
/// With 3x3 kernels it is SHIP's "refresh" block ([`Blk`]); with 1x1 kernels on a pooled
/// (B,C,1,1) vector it is the attention MLP ([`Mlp`]).
#[derive(Debug, Clone)]
pub struct ConvReluConv {
    c1: Conv,
    c2: Conv,
}

/// The refresh block Conv3(a->b) -> ReLU -> Conv3(b->b).
pub type Blk = ConvReluConv;
/// The attention MLP Conv1(a->hidden) -> ReLU -> Conv1(hidden->b).
pub type Mlp = ConvReluConv;

impl ConvReluConv {
    /// The refresh block, 3x3 kernels, `cin -> cout -> cout`.
    pub fn new(vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        Self::with_kernel(vb, cin, cout, cout, 3)
    }

    /// The attention MLP, 1x1 kernels, `cin -> hidden -> cout`.
    pub fn mlp(vb: VarBuilder, cin: usize, hidden: usize, cout: usize) -> Result<Self> {
        Self::with_kernel(vb, cin, hidden, cout, 1)
    }

    fn with_kernel(
        vb: VarBuilder,
        cin: usize,
        hidden: usize,
        cout: usize,
        k: usize,
    ) -> Result<Self> {
        Ok(Self {
            c1: Conv::new(vb.pp("0"), cin, hidden, k)?,
            c2: Conv::new(vb.pp("2"), hidden, cout, k)?,
        })
    }
}

impl Layer for ConvReluConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.c2.forward(&relu(&self.c1.forward(x)?)?)
    }

    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let y = self.c1.emit(g, x)?;
        let y = g.relu(&y);
        self.c2.emit(g, &y)
    }
}

/// Per-pixel LayerNorm over the channel axis with bias (Restormer "WithBias"), variance biased,
/// computed in two passes (mean, then mean of squared deviations) for f32 stability.
#[derive(Debug, Clone)]
pub struct ChannelNorm {
    weight: Tensor,
    bias: Tensor,
}

/// Epsilon of every normalisation in SHIP (LayerNorm and InstanceNorm).
pub const NORM_EPS: f64 = 1e-5;

impl ChannelNorm {
    /// Parameters `body.weight` / `body.bias` under `vb`, as in the official checkpoint.
    pub fn new(vb: VarBuilder, c: usize) -> Result<Self> {
        let vb = vb.pp("body");
        Ok(Self {
            weight: vb.get_with_hints(c, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(c, "bias", Init::Const(0.0))?,
        })
    }
}

impl ChannelNorm {
    /// Emits `self(x) · gate`, one order of the spatial interaction: a `HighOrderGate` node with
    /// custom ops, LayerNorm nodes and a `Mul` with standard ones.
    pub fn emit_gate(&self, g: &mut Graph, x: &str, gate: &str) -> Result<String> {
        if g.ops() == OpSet::Standard {
            let y = self.emit(g, x)?;
            return Ok(g.mul(&y, gate));
        }
        let w = g.init_tensor("ln_w", &self.weight)?;
        let b = g.init_tensor("ln_b", &self.bias)?;
        Ok(g.custom(
            high_order_gate::OP_TYPE,
            &[x, gate, &w, &b],
            vec![attr_float(high_order_gate::EPSILON_ATTR, NORM_EPS as f32)],
        ))
    }
}

impl Layer for ChannelNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        normalize_affine(x, &self.weight, &self.bias, NormAxes::Channels, NORM_EPS)
    }

    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let c = self.weight.dim(0)?;
        let y = emit_normalize(g, x, NormAxes::Channels);
        let w = g.init_tensor_as("ln_w", &self.weight, &[1, c, 1, 1])?;
        let b = g.init_tensor_as("ln_b", &self.bias, &[1, c, 1, 1])?;
        let y = g.mul(&y, &w);
        Ok(g.add(&y, &b))
    }
}

/// Which axes a normalisation takes its statistics over.
#[derive(Debug, Clone, Copy)]
pub enum NormAxes {
    /// The channel axis, per pixel (LayerNorm).
    Channels,
    /// H and W, per channel (InstanceNorm).
    Spatial,
}

/// (x - mean) / sqrt(var + eps), two-pass, as ONNX nodes.
pub fn emit_normalize(g: &mut Graph, x: &str, axes: NormAxes) -> String {
    let mean = |g: &mut Graph, t: &str| match axes {
        NormAxes::Channels => g.reduce_mean(t, &[1]),
        NormAxes::Spatial => g.spatial_mean(t),
    };
    let mu = mean(g, x);
    let xc = g.sub(x, &mu);
    let sq = g.mul(&xc, &xc);
    let var = mean(g, &sq);
    let eps = g.scalar(NORM_EPS as f32);
    let var = g.add(&var, &eps);
    let sd = g.sqrt(&var);
    g.div(&xc, &sd)
}

/// Affine InstanceNorm (two-pass statistics over H, W per channel).
#[derive(Debug, Clone)]
pub struct InstanceNorm {
    weight: Tensor,
    bias: Tensor,
}

impl InstanceNorm {
    pub fn new(vb: VarBuilder, c: usize) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(c, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(c, "bias", Init::Const(0.0))?,
        })
    }
}

impl Layer for InstanceNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        normalize_affine(x, &self.weight, &self.bias, NormAxes::Spatial, NORM_EPS)
    }

    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let c = self.weight.dim(0)?;
        // Explicit two-pass averages rather than InstanceNormalization: onnxruntime's one-pass
        // kernel loses digits on these features (SHIP_NETWORK.md §7, precision note).
        let y = emit_normalize(g, x, NormAxes::Spatial);
        let w = g.init_tensor_as("in_w", &self.weight, &[1, c, 1, 1])?;
        let b = g.init_tensor_as("in_b", &self.bias, &[1, c, 1, 1])?;
        let y = g.mul(&y, &w);
        Ok(g.add(&y, &b))
    }
}

/// Global average pooling to (B,C,1,1).
pub fn gap(x: &Tensor) -> Result<Tensor> {
    x.mean_keepdim(3)?.mean_keepdim(2)
}

/// Softmax over the channel axis.
pub fn channel_softmax(x: &Tensor) -> Result<Tensor> {
    // `ops::softmax` (not `softmax_last_dim`): it has a backward pass (notes/CANDLE.md §2).
    candle_nn::ops::softmax(x, 1)
}

/// LeakyReLU with the given slope: one fused pass forward and backward on CPU.
pub fn leaky(x: &Tensor, slope: f64) -> Result<Tensor> {
    super::leaky_cpu::leaky_relu(x, slope)
}

/// ReLU as the fused LeakyReLU with slope 0: candle's own `relu` takes four tensor ops backward.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    leaky(x, 0.0)
}
