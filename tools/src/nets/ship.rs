//! SHIP / SHIP++ for infrared-visible fusion.
//!
//! SHIP: N. Zheng, M. Zhou et al., "Probing Synergistic High-Order Interaction in Infrared and
//! Visible Image Fusion", CVPR 2024. SHIP++: M. Zhou, N. Zheng et al., "Probing Synergistic
//! High-Order Interaction for Multi-Modal Image Fusion", IEEE TPAMI 47(2), 2025.
//! Re-implemented from the description in `shared/SHIP_NETWORK.md` (§2 SHIP, §3 SHIP++). Variable
//! paths follow the official state dict, so the released checkpoint loads by name; the SHIP++
//! additions add their own names (`integrate`) and change MLP input widths.
//!
//! The training parametrisations (cross/diagonal CDC taps with a learned gate; LU-parameterised
//! invertible 1x1 conv) are kept as parameters, and each module folds them into one plain conv
//! weight in a single place ([`Cdc::folded`], [`InvConv::folded`]) used both by the candle forward
//! and by the ONNX emission: the exported graph holds only the folded forms.

use candle_core::{Device, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use super::config::{ShipConfig, Task};
use super::dft::circular_conv;
use super::layers::{
    Blk, ChannelNorm, Conv, InstanceNorm, Layer, Mlp, channel_softmax, gap, leaky,
};
use crate::export::graph::{Graph, OpSet};
use ship_edge::ops::global_interaction;

/// Central-difference strength θ of the CDC convs.
const CDC_THETA: f64 = 0.8;
/// Clamp of the InvBlock's affine coupling scale.
const INV_CLAMP: f64 = 0.8;
/// 3x3 positions (row-major) of the 5 taps of the "+" (horizontal/vertical) CDC kernel.
const HV_TAPS: [usize; 5] = [1, 3, 4, 5, 7];
/// 3x3 positions of the 5 taps of the "x" (diagonal) CDC kernel.
const DG_TAPS: [usize; 5] = [0, 2, 4, 6, 8];

fn scatter(taps: &[usize; 5], dev: &Device) -> Result<Tensor> {
    let mut m = vec![0f32; 5 * 9];
    for (i, &p) in taps.iter().enumerate() {
        m[i * 9 + p] = 1.0;
    }
    Tensor::from_vec(m, (5, 9), dev)
}

/// Cross-shaped central-difference conv with identity ("cdcconv", θ = 0.8):
/// g·HV(t) + (1−g)·DG(t) + t, g = sigmoid(HP_branch). Linear, so it folds into one 3x3 conv.
#[derive(Debug, Clone)]
pub struct Cdc {
    h: Tensor,
    d: Tensor,
    hp: Tensor,
}

impl Cdc {
    pub fn new(vb: VarBuilder, c: usize) -> Result<Self> {
        let init = super::layers::torch_default_init(c * 5);
        Ok(Self {
            h: vb
                .pp("h_conv")
                .pp("conv")
                .get_with_hints((c, c, 1, 5), "weight", init)?,
            d: vb
                .pp("d_conv")
                .pp("conv")
                .get_with_hints((c, c, 1, 5), "weight", init)?,
            hp: vb.get_with_hints(1, "HP_branch", Init::Const(0.0))?,
        })
    }

    /// The equivalent 3x3 kernel (identity included), differentiable in the parameters.
    pub fn folded(&self) -> Result<Tensor> {
        let (co, ci, _, _) = self.h.dims4()?;
        let dev = self.h.device();
        let mut centre = vec![0f32; 9];
        centre[4] = 1.0;
        let centre = Tensor::from_vec(centre, (1, 9), dev)?;
        let branch = |w: &Tensor, taps: &[usize; 5]| -> Result<Tensor> {
            let w = w.reshape((co * ci, 5))?;
            let k = w.matmul(&scatter(taps, dev)?)?;
            let diff = w.sum_keepdim(1)?.matmul(&centre)?;
            k - (diff * CDC_THETA)?
        };
        // sigmoid saturates to exactly 0 for the official visible gates (p ≈ −1300), no NaN.
        let g = candle_nn::ops::sigmoid(&self.hp)?.reshape((1, 1))?;
        let hv = branch(&self.h, &HV_TAPS)?.broadcast_mul(&g)?;
        let dg = branch(&self.d, &DG_TAPS)?.broadcast_mul(&(1.0 - &g)?)?;
        let eye = Tensor::eye(co, candle_core::DType::F32, dev)?
            .reshape((co * ci, 1))?
            .matmul(&centre)?;
        (hv + dg + eye)?.reshape((co, ci, 3, 3))
    }

    fn conv(&self) -> Result<Conv> {
        Conv::from_weights(self.folded()?, None)
    }
}

impl Layer for Cdc {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv()?.forward(x)
    }
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        self.conv()?.emit(g, x)
    }
}

/// t = Conv3(x); Blk(t) + CDC(t).
#[derive(Debug, Clone)]
pub struct EdgeBlock {
    process: Conv,
    res: Blk,
    cdc: Cdc,
}

impl EdgeBlock {
    pub fn new(vb: VarBuilder, c: usize) -> Result<Self> {
        Ok(Self {
            process: Conv::new(vb.pp("process"), c, c, 3)?,
            res: Blk::new(vb.pp("Res"), c, c)?,
            cdc: Cdc::new(vb.pp("CDC"), c)?,
        })
    }
}

impl Layer for EdgeBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let t = self.process.forward(x)?;
        self.res.forward(&t)? + self.cdc.forward(&t)?
    }
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let t = self.process.emit(g, x)?;
        let a = self.res.emit(g, &t)?;
        let b = self.cdc.emit(g, &t)?;
        Ok(g.add(&a, &b))
    }
}

/// Conv1(in -> C) followed by EdgeBlocks (`conv`, `block1`, `block2`, ...).
#[derive(Debug, Clone)]
pub struct FeatureExtractor {
    conv: Conv,
    blocks: Vec<EdgeBlock>,
}

impl FeatureExtractor {
    pub fn new(vb: VarBuilder, cin: usize, cfg: &ShipConfig) -> Result<Self> {
        let blocks = (1..=cfg.edge_blocks)
            .map(|i| EdgeBlock::new(vb.pp(format!("block{i}")), cfg.width))
            .collect::<Result<_>>()?;
        Ok(Self {
            conv: Conv::new(vb.pp("conv"), cin, cfg.width, 1)?,
            blocks,
        })
    }
}

impl Layer for FeatureExtractor {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.blocks
            .iter()
            .try_fold(self.conv.forward(x)?, |x, b| b.forward(&x))
    }
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let mut y = self.conv.emit(g, x)?;
        for b in &self.blocks {
            y = b.emit(g, &y)?;
        }
        Ok(y)
    }
}

/// Emits the order-1 global interaction as standard ONNX: complex DFTs along H and W, a complex
/// product, and the inverse DFTs, keeping the real part (SHIP_NETWORK.md §7, portable form).
///
/// The means are taken out first and added back: v ⊛ r = (v − v̄) ⊛ (r − r̄) + HW·v̄·r̄ per
/// channel. An f32 FFT's error scales with the signal's norm, which the DC term dominates
/// (~HW·v̄·r̄ ≈ 1e5 at 768x576); centred inputs keep the error at the scale of the fluctuations
/// the following per-pixel LayerNorm looks at.
fn emit_circular_conv(g: &mut Graph, v: &str, r: &str) -> String {
    if g.ops() == OpSet::Custom {
        return g.custom(global_interaction::OP_TYPE, &[v, r], vec![]);
    }
    let spectrum = |g: &mut Graph, x: &str| {
        let x = g.unsqueeze(x, &[4]);
        let x = g.dft(&x, 3, false);
        let x = g.dft(&x, 2, false);
        (g.slice(&x, 4, 0, 1), g.slice(&x, 4, 1, 2))
    };
    let (v_mean, r_mean) = (g.spatial_mean(v), g.spatial_mean(r));
    let (vc, rc) = (g.sub(v, &v_mean), g.sub(r, &r_mean));
    let (vr, vi) = spectrum(g, &vc);
    let (rr, ri) = spectrum(g, &rc);
    let (a, b) = (g.mul(&vr, &rr), g.mul(&vi, &ri));
    let pr = g.sub(&a, &b);
    let (a, b) = (g.mul(&vr, &ri), g.mul(&vi, &rr));
    let pi = g.add(&a, &b);
    let p = g.concat(&[&pr, &pi], 4);
    let p = g.dft(&p, 2, true);
    let p = g.dft(&p, 3, true);
    let re = g.slice(&p, 4, 0, 1);
    let fluctuation = g.squeeze(&re, &[4]);
    let hw = g.spatial_size(v);
    let dc = g.mul(&v_mean, &r_mean);
    let dc = g.mul(&dc, &hw);
    g.add(&fluctuation, &dc)
}

/// Spatial high-order interaction (SHIP_NETWORK.md §2.3 b; SHIP++ switches §3.2).
#[derive(Debug, Clone)]
pub struct SpatialInteraction {
    norms: Vec<ChannelNorm>,
    fused: Vec<Blk>,
    infrared: Vec<Blk>,
    integrate: Option<Conv>,
    cross_order: bool,
    residual: bool,
}

impl SpatialInteraction {
    pub fn new(vb: VarBuilder, cfg: &ShipConfig) -> Result<Self> {
        let (c, n) = (cfg.width, cfg.orders);
        Ok(Self {
            norms: (1..=n)
                .map(|k| ChannelNorm::new(vb.pp(format!("norm{k}")), c))
                .collect::<Result<_>>()?,
            fused: (1..n)
                .map(|k| Blk::new(vb.pp(format!("reflashFused{k}")), c, c))
                .collect::<Result<_>>()?,
            infrared: (1..n)
                .map(|k| Blk::new(vb.pp(format!("reflashInfrared{k}")), c, c))
                .collect::<Result<_>>()?,
            integrate: cfg
                .cross_order_integration
                .then(|| Conv::new(vb.pp("integrate"), n * c, c, 1))
                .transpose()?,
            cross_order: cfg.cross_order_attention,
            residual: cfg.residual_memory,
        })
    }

    /// Returns (V_s, R_s): V plus the last (or integrated) order, and the evolved IR stream.
    pub fn forward(&self, v: &Tensor, r: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut f = (self.norms[0].forward(&circular_conv(v, r)?)? * r)?;
        let mut rk = r.clone();
        let mut orders = vec![f.clone()];
        for ((norm, fused), infrared) in self.norms[1..].iter().zip(&self.fused).zip(&self.infrared)
        {
            rk = infrared.forward(&if self.cross_order { (&rk + &f)? } else { rk })?;
            let next = (norm.forward(&fused.forward(&f)?)? * &rk)?;
            f = if self.residual { (next + &f)? } else { next };
            orders.push(f.clone());
        }
        let top = match &self.integrate {
            Some(conv) => conv.forward(&Tensor::cat(&orders, 1)?)?,
            None => f,
        };
        Ok(((top + v)?, rk))
    }

    pub fn emit(&self, g: &mut Graph, v: &str, r: &str) -> Result<(String, String)> {
        let a = emit_circular_conv(g, v, r);
        let mut f = self.norms[0].emit_gate(g, &a, r)?;
        let mut rk = r.to_string();
        let mut orders = vec![f.clone()];
        for ((norm, fused), infrared) in self.norms[1..].iter().zip(&self.fused).zip(&self.infrared)
        {
            let input = if self.cross_order { g.add(&rk, &f) } else { rk };
            rk = infrared.emit(g, &input)?;
            let y = fused.emit(g, &f)?;
            let next = norm.emit_gate(g, &y, &rk)?;
            f = if self.residual {
                g.add(&next, &f)
            } else {
                next
            };
            orders.push(f.clone());
        }
        let top = match &self.integrate {
            Some(conv) => {
                let refs: Vec<&str> = orders.iter().map(String::as_str).collect();
                let cat = g.concat(&refs, 1);
                conv.emit(g, &cat)?
            }
            None => f,
        };
        Ok((g.add(&top, v), rk))
    }
}

/// Invertible 1x1 conv with Glow's LU parametrisation:
/// W = P·(L⊙mask + I)·(U⊙maskᵀ + diag(sign_s·exp(log_s))). `p` and `sign_s` are fixed buffers.
#[derive(Debug, Clone)]
pub struct InvConv {
    lower: Tensor,
    upper: Tensor,
    log_s: Tensor,
    p: Tensor,
    sign_s: Tensor,
}

/// Variables that are fixed buffers, not parameters (excluded from optimisers and counts).
pub fn is_buffer(name: &str) -> bool {
    name.ends_with("invconv.p") || name.ends_with("invconv.sign_s")
}

impl InvConv {
    pub fn new(vb: VarBuilder, c: usize) -> Result<Self> {
        Ok(Self {
            lower: vb.get_with_hints((c, c), "lower", Init::Const(0.0))?,
            upper: vb.get_with_hints((c, c), "upper", Init::Const(0.0))?,
            log_s: vb.get_with_hints(c, "log_s", Init::Const(0.0))?,
            p: vb.get_with_hints((c, c), "p", Init::Const(0.0))?,
            sign_s: vb.get_with_hints(c, "sign_s", Init::Const(1.0))?,
        })
    }

    /// The folded 1x1 conv weight, shape (C, C, 1, 1).
    pub fn folded(&self) -> Result<Tensor> {
        let c = self.log_s.dim(0)?;
        let dev = self.p.device();
        let eye = Tensor::eye(c, candle_core::DType::F32, dev)?;
        let strict_lower = Tensor::tril2(c, candle_core::DType::F32, dev)?.sub(&eye)?;
        let l = ((&self.lower * &strict_lower)? + &eye)?;
        let diag = eye.broadcast_mul(&(&self.sign_s * self.log_s.exp()?)?.reshape((1, c))?)?;
        let u = ((&self.upper * strict_lower.t()?)? + diag)?;
        self.p.matmul(&l.matmul(&u)?)?.reshape((c, c, 1, 1))
    }

    fn conv(&self) -> Result<Conv> {
        Conv::from_weights(self.folded()?, None)
    }
}

/// HIN block ("UNetConvBlock"): Conv3, InstanceNorm on the first half of the channels,
/// LeakyReLU 0.1, Conv3, LeakyReLU 0.1, plus a 1x1 projection of the input.
#[derive(Debug, Clone)]
pub struct HinBlock {
    identity: Conv,
    conv1: Conv,
    conv2: Conv,
    norm: InstanceNorm,
    half: usize,
    c: usize,
}

const HIN_SLOPE: f64 = 0.1;
const DENSE_SLOPE: f64 = 0.2;

impl HinBlock {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self {
            identity: Conv::new(vb.pp("identity"), cin, cout, 1)?,
            conv1: Conv::new(vb.pp("conv_1"), cin, cout, 3)?,
            conv2: Conv::new(vb.pp("conv_2"), cout, cout, 3)?,
            norm: InstanceNorm::new(vb.pp("norm"), cout / 2)?,
            half: cout / 2,
            c: cout,
        })
    }
}

impl HinBlock {
    /// conv_1 with the bias of the instance-normalised half set to zero. The norm subtracts each
    /// channel's mean, so that bias has no effect on the result; dropping it keeps the channels'
    /// mean small next to their spread, which the normalisation otherwise has to cancel in f32
    /// (the official weights give means ~100x the spread, and a runtime whose conv rounds a few
    /// ulps differently then drifts by 1e-3 at the output).
    fn conv1_effective(&self) -> Result<Conv> {
        let b = self.conv1.bias.as_ref().expect("HIN conv_1 has a bias");
        let zeros = b.narrow(0, 0, self.half)?.zeros_like()?;
        let bias = Tensor::cat(&[zeros, b.narrow(0, self.half, self.c - self.half)?], 0)?;
        Conv::from_weights(self.conv1.weight.clone(), Some(bias))
    }
}

impl Layer for HinBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let o = self.conv1_effective()?.forward(x)?;
        let a = self.norm.forward(&o.narrow(1, 0, self.half)?)?;
        let o = Tensor::cat(&[a, o.narrow(1, self.half, self.c - self.half)?], 1)?;
        let o = leaky(&o, HIN_SLOPE)?;
        let o = leaky(&self.conv2.forward(&o)?, HIN_SLOPE)?;
        o + self.identity.forward(x)?
    }
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let o = self.conv1_effective()?.emit(g, x)?;
        let a = g.slice(&o, 1, 0, self.half as i64);
        let a = self.norm.emit(g, &a)?;
        let b = g.slice(&o, 1, self.half as i64, self.c as i64);
        let o = g.concat(&[&a, &b], 1);
        let o = g.leaky_relu(&o, HIN_SLOPE as f32);
        let o = self.conv2.emit(g, &o)?;
        let o = g.leaky_relu(&o, HIN_SLOPE as f32);
        let id = self.identity.emit(g, x)?;
        Ok(g.add(&o, &id))
    }
}

/// DenseBlock(in -> out, growth gc): two HIN blocks and a Conv3 over the concatenation.
#[derive(Debug, Clone)]
pub struct DenseBlock {
    conv1: HinBlock,
    conv2: HinBlock,
    conv3: Conv,
}

impl DenseBlock {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, gc: usize) -> Result<Self> {
        Ok(Self {
            conv1: HinBlock::new(vb.pp("conv1"), cin, gc)?,
            conv2: HinBlock::new(vb.pp("conv2"), gc, gc)?,
            conv3: Conv::new(vb.pp("conv3"), cin + 2 * gc, cout, 3)?,
        })
    }
}

impl Layer for DenseBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x1 = leaky(&self.conv1.forward(x)?, DENSE_SLOPE)?;
        let x2 = leaky(&self.conv2.forward(&x1)?, DENSE_SLOPE)?;
        leaky(
            &self.conv3.forward(&Tensor::cat(&[x, &x1, &x2], 1)?)?,
            DENSE_SLOPE,
        )
    }
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let x1 = self.conv1.emit(g, x)?;
        let x1 = g.leaky_relu(&x1, DENSE_SLOPE as f32);
        let x2 = self.conv2.emit(g, &x1)?;
        let x2 = g.leaky_relu(&x2, DENSE_SLOPE as f32);
        let cat = g.concat(&[x, &x1, &x2], 1);
        let y = self.conv3.emit(g, &cat)?;
        Ok(g.leaky_relu(&y, DENSE_SLOPE as f32))
    }
}

/// Invertible block (forward direction only): z = W·x; y1 = z1 + F(z2);
/// s = 0.8·(2·sigmoid(H(y1)) − 1); y2 = z2·exp(s) + G(y1).
#[derive(Debug, Clone)]
pub struct InvBlock {
    invconv: InvConv,
    f: DenseBlock,
    g: DenseBlock,
    h: DenseBlock,
    split: usize,
    total: usize,
}

impl InvBlock {
    pub fn new(vb: VarBuilder, total: usize, split: usize, gc: usize) -> Result<Self> {
        let rest = total - split;
        Ok(Self {
            invconv: InvConv::new(vb.pp("invconv"), total)?,
            f: DenseBlock::new(vb.pp("F"), rest, split, gc)?,
            g: DenseBlock::new(vb.pp("G"), split, rest, gc)?,
            h: DenseBlock::new(vb.pp("H"), split, rest, gc)?,
            split,
            total,
        })
    }
}

impl Layer for InvBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let z = self.invconv.conv()?.forward(x)?;
        let (z1, z2) = (
            z.narrow(1, 0, self.split)?,
            z.narrow(1, self.split, self.total - self.split)?,
        );
        let y1 = (z1 + self.f.forward(&z2)?)?;
        let s = ((candle_nn::ops::sigmoid(&self.h.forward(&y1)?)? * 2.0)? - 1.0)? * INV_CLAMP;
        let y2 = ((z2 * s?.exp()?)? + self.g.forward(&y1)?)?;
        Tensor::cat(&[y1, y2], 1)
    }
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let z = self.invconv.conv()?.emit(g, x)?;
        let z1 = g.slice(&z, 1, 0, self.split as i64);
        let z2 = g.slice(&z, 1, self.split as i64, self.total as i64);
        let fz = self.f.emit(g, &z2)?;
        let y1 = g.add(&z1, &fz);
        let h = self.h.emit(g, &y1)?;
        let sg = g.sigmoid(&h);
        let two = g.scalar(2.0 * INV_CLAMP as f32);
        let clamp = g.scalar(INV_CLAMP as f32);
        let s = g.mul(&sg, &two);
        let s = g.sub(&s, &clamp);
        let e = g.exp(&s);
        let scaled = g.mul(&z2, &e);
        let gy = self.g.emit(g, &y1)?;
        let y2 = g.add(&scaled, &gy);
        Ok(g.concat(&[&y1, &y2], 1))
    }
}

/// Channel high-order interaction (SHIP_NETWORK.md §2.3 b; SHIP++ switches §3.2).
#[derive(Debug, Clone)]
pub struct ChannelInteraction {
    att0: Mlp,
    atts: Vec<Mlp>,
    fused: Vec<Blk>,
    integrate: Option<Conv>,
    inv: Option<InvBlock>,
    out: Conv,
    cross_order: bool,
    residual: bool,
}

impl ChannelInteraction {
    pub fn new(vb: VarBuilder, cfg: &ShipConfig) -> Result<Self> {
        let (c, n) = (cfg.width, cfg.orders);
        let c2 = 2 * c;
        let att_in = |k: usize| {
            if cfg.cross_order_attention {
                c2 * k
            } else {
                c2
            }
        };
        Ok(Self {
            att0: Mlp::mlp(vb.pp("chaAtten"), c2, c, c2)?,
            atts: (1..n)
                .map(|k| Mlp::mlp(vb.pp(format!("reflashChaAtten{k}")), att_in(k), c, c2))
                .collect::<Result<_>>()?,
            fused: (1..n)
                .map(|k| Blk::new(vb.pp(format!("reflashFused{k}")), c2, c2))
                .collect::<Result<_>>()?,
            integrate: cfg
                .cross_order_integration
                .then(|| Conv::new(vb.pp("integrate"), n * c2, c2, 1))
                .transpose()?,
            inv: cfg
                .channel_inv_block
                .then(|| InvBlock::new(vb.pp("postprocess").pp("0"), c2, c, cfg.growth))
                .transpose()?,
            out: Conv::new(vb.pp("postprocess").pp("1"), c2, c, 1)?,
            cross_order: cfg.cross_order_attention,
            residual: cfg.residual_memory,
        })
    }

    /// V' = Conv1(InvBlock(G_N)) + V_s.
    pub fn forward(&self, vs: &Tensor, rs: &Tensor) -> Result<Tensor> {
        let x = Tensor::cat(&[vs, rs], 1)?;
        let mut a = channel_softmax(&self.att0.forward(&gap(&x)?)?)?;
        let mut g = x.broadcast_mul(&a)?;
        let (mut atts, mut orders) = (vec![a.clone()], vec![g.clone()]);
        for (mlp, fused) in self.atts.iter().zip(&self.fused) {
            let input = if self.cross_order {
                Tensor::cat(&atts, 1)?
            } else {
                a
            };
            a = channel_softmax(&mlp.forward(&input)?)?;
            let next = fused.forward(&g)?.broadcast_mul(&a)?;
            g = if self.residual { (next + &g)? } else { next };
            atts.push(a.clone());
            orders.push(g.clone());
        }
        if let Some(conv) = &self.integrate {
            g = conv.forward(&Tensor::cat(&orders, 1)?)?;
        }
        if let Some(inv) = &self.inv {
            g = inv.forward(&g)?;
        }
        self.out.forward(&g)? + vs
    }

    pub fn emit(&self, g: &mut Graph, vs: &str, rs: &str) -> Result<String> {
        let x = g.concat(&[vs, rs], 1);
        let pooled = g.spatial_mean(&x);
        let logits = self.att0.emit(g, &pooled)?;
        let mut a = g.softmax(&logits, 1);
        let mut y = g.mul(&x, &a);
        let (mut atts, mut orders) = (vec![a.clone()], vec![y.clone()]);
        for (mlp, fused) in self.atts.iter().zip(&self.fused) {
            let input = if self.cross_order {
                let refs: Vec<&str> = atts.iter().map(String::as_str).collect();
                g.concat(&refs, 1)
            } else {
                a
            };
            let logits = mlp.emit(g, &input)?;
            a = g.softmax(&logits, 1);
            let f = fused.emit(g, &y)?;
            let next = g.mul(&f, &a);
            y = if self.residual {
                g.add(&next, &y)
            } else {
                next
            };
            atts.push(a.clone());
            orders.push(y.clone());
        }
        if let Some(conv) = &self.integrate {
            let refs: Vec<&str> = orders.iter().map(String::as_str).collect();
            let cat = g.concat(&refs, 1);
            y = conv.emit(g, &cat)?;
        }
        if let Some(inv) = &self.inv {
            y = inv.emit(g, &y)?;
        }
        let o = self.out.emit(g, &y)?;
        Ok(g.add(&o, vs))
    }
}

/// One SHIP block: spatial then channel interaction (`interactionK.spatial`, `.channel`).
#[derive(Debug, Clone)]
pub struct ShipBlock {
    spatial: SpatialInteraction,
    channel: ChannelInteraction,
}

impl ShipBlock {
    pub fn new(vb: VarBuilder, cfg: &ShipConfig) -> Result<Self> {
        Ok(Self {
            spatial: SpatialInteraction::new(vb.pp("spatial"), cfg)?,
            channel: ChannelInteraction::new(vb.pp("channel"), cfg)?,
        })
    }

    /// (V, R) -> (V', R'); R' is the spatial branch's evolved IR stream.
    pub fn forward(&self, v: &Tensor, r: &Tensor) -> Result<(Tensor, Tensor)> {
        let (vs, rs) = self.spatial.forward(v, r)?;
        Ok((self.channel.forward(&vs, &rs)?, rs))
    }

    pub fn emit(&self, g: &mut Graph, v: &str, r: &str) -> Result<(String, String)> {
        let (vs, rs) = self.spatial.emit(g, v, r)?;
        Ok((self.channel.emit(g, &vs, &rs)?, rs))
    }
}

/// Channel attention of the Refine head: y = GAP(Blk(x)); x + sigmoid(MLP(y))⊙y.
/// It adds a gated per-channel constant; it does not rescale x.
#[derive(Debug, Clone)]
pub struct CaLayer {
    process: Blk,
    conv_du: Mlp,
}

impl CaLayer {
    pub fn new(vb: VarBuilder, c: usize) -> Result<Self> {
        Ok(Self {
            process: Blk::new(vb.pp("process"), c, c)?,
            conv_du: Mlp::mlp(vb.pp("conv_du"), c, c / 4, c)?,
        })
    }
}

impl Layer for CaLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = gap(&self.process.forward(x)?)?;
        let z = candle_nn::ops::sigmoid(&self.conv_du.forward(&y)?)?;
        x.broadcast_add(&(z * y)?)
    }
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let y = self.process.emit(g, x)?;
        let y = g.spatial_mean(&y);
        let z = self.conv_du.emit(g, &y)?;
        let z = g.sigmoid(&z);
        let zy = g.mul(&z, &y);
        Ok(g.add(x, &zy))
    }
}

/// Reconstruction head: Conv3 -> CALayer -> CALayer -> Conv3(C -> out), no output activation.
#[derive(Debug, Clone)]
pub struct Refine {
    conv_in: Conv,
    cal: Vec<CaLayer>,
    conv_last: Conv,
}

impl Refine {
    pub fn new(vb: VarBuilder, c: usize, cout: usize) -> Result<Self> {
        Ok(Self {
            conv_in: Conv::new(vb.pp("conv_in"), c, c, 3)?,
            cal: (0..2)
                .map(|i| CaLayer::new(vb.pp("process").pp(i.to_string()), c))
                .collect::<Result<_>>()?,
            conv_last: Conv::new(vb.pp("conv_last"), c, cout, 3)?,
        })
    }
}

impl Layer for Refine {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self
            .cal
            .iter()
            .try_fold(self.conv_in.forward(x)?, |y, c| c.forward(&y))?;
        self.conv_last.forward(&y)
    }
    fn emit(&self, g: &mut Graph, x: &str) -> Result<String> {
        let mut y = self.conv_in.emit(g, x)?;
        for c in &self.cal {
            y = c.emit(g, &y)?;
        }
        self.conv_last.emit(g, &y)
    }
}

/// The whole fusion network: (visible Y, IR) -> fused Y, raw (no clamp).
#[derive(Debug, Clone)]
pub struct Ship {
    cfg: ShipConfig,
    vis: FeatureExtractor,
    inf: FeatureExtractor,
    blocks: Vec<ShipBlock>,
    post_inv: InvBlock,
    post_conv: Conv,
    refine: Refine,
}

impl Ship {
    /// Builds the network of `cfg`. Parameter names follow the official IVIF checkpoint (`vis`
    /// is the main stream's extractor, `inf` the modulating one's), also for pan-sharpening,
    /// where they take the upsampled MS and the PAN image.
    pub fn new(cfg: &ShipConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let total = cfg.blocks * cfg.width;
        let bands = cfg.task.bands();
        Ok(Self {
            cfg: *cfg,
            vis: FeatureExtractor::new(vb.pp("vis"), bands, cfg)?,
            inf: FeatureExtractor::new(vb.pp("inf"), 1, cfg)?,
            blocks: (1..=cfg.blocks)
                .map(|i| ShipBlock::new(vb.pp(format!("interaction{i}")), cfg))
                .collect::<Result<_>>()?,
            post_inv: InvBlock::new(vb.pp("postprocess").pp("0"), total, total / 2, cfg.growth)?,
            post_conv: Conv::new(vb.pp("postprocess").pp("1"), total, cfg.width, 1)?,
            refine: Refine::new(vb.pp("reconstruction"), cfg.width, bands)?,
        })
    }

    pub fn config(&self) -> &ShipConfig {
        &self.cfg
    }

    /// The raw output from the main stream (visible Y, or the upsampled MS) and the modulating
    /// one (IR, or PAN), both (B,C,H,W) in `[0,1]`: fused Y for IVIF, the sharpened MS for
    /// pan-sharpening (a residual added to the main input).
    pub fn forward(&self, main: &Tensor, modulator: &Tensor) -> Result<Tensor> {
        let mut v = self.vis.forward(main)?;
        let mut r = self.inf.forward(modulator)?;
        let mut outs = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            (v, r) = b.forward(&v, &r)?;
            outs.push(v.clone());
        }
        let z = self
            .post_conv
            .forward(&self.post_inv.forward(&Tensor::cat(&outs, 1)?)?)?;
        let out = self.refine.forward(&z)?;
        match self.cfg.task {
            Task::Ivif => Ok(out),
            Task::Pan { .. } => out + main,
        }
    }

    /// Like [`Ship::forward`], also returning the named stages of the official intermediates
    /// (`fe_v.out`, `fe_r.out`, `bK.out.v`, `bK.out.r`, `agg.out`, `out`) for module-by-module
    /// parity checks.
    pub fn trace(&self, vis_y: &Tensor, ir: &Tensor) -> Result<Vec<(String, Tensor)>> {
        let mut v = self.vis.forward(vis_y)?;
        let mut r = self.inf.forward(ir)?;
        let mut stages = vec![
            ("fe_v.out".to_string(), v.clone()),
            ("fe_r.out".to_string(), r.clone()),
        ];
        let mut outs = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            let (vs, rs) = b.spatial.forward(&v, &r)?;
            stages.push((format!("b{}.spatial.v", i + 1), vs.clone()));
            (v, r) = (b.channel.forward(&vs, &rs)?, rs);
            stages.push((format!("b{}.out.v", i + 1), v.clone()));
            stages.push((format!("b{}.out.r", i + 1), r.clone()));
            outs.push(v.clone());
        }
        let z = self
            .post_conv
            .forward(&self.post_inv.forward(&Tensor::cat(&outs, 1)?)?)?;
        stages.push(("agg.out".to_string(), z.clone()));
        let out = self.refine.forward(&z)?;
        let out = match self.cfg.task {
            Task::Ivif => out,
            Task::Pan { .. } => (out + vis_y)?,
        };
        stages.push(("out".to_string(), out));
        Ok(stages)
    }

    /// Emits the network reading graph tensors `vis_y` (the main stream: visible Y, or the
    /// upsampled MS) and `ir` (the modulator: IR, or PAN); returns the output's name.
    pub fn emit(&self, g: &mut Graph, vis_y: &str, ir: &str) -> Result<String> {
        let stages = self.emit_stages(g, vis_y, ir)?;
        Ok(stages.into_iter().last().expect("at least one stage").1)
    }

    /// Like [`Ship::emit`], returning the tensor names of the stages [`Ship::trace`] names.
    pub fn emit_stages(
        &self,
        g: &mut Graph,
        vis_y: &str,
        ir: &str,
    ) -> Result<Vec<(String, String)>> {
        let mut v = self.vis.emit(g, vis_y)?;
        let mut r = self.inf.emit(g, ir)?;
        let mut stages = vec![
            ("fe_v.out".to_string(), v.clone()),
            ("fe_r.out".to_string(), r.clone()),
        ];
        let mut outs = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            let (vs, rs) = b.spatial.emit(g, &v, &r)?;
            stages.push((format!("b{}.spatial.v", i + 1), vs.clone()));
            (v, r) = (b.channel.emit(g, &vs, &rs)?, rs);
            stages.push((format!("b{}.out.v", i + 1), v.clone()));
            stages.push((format!("b{}.out.r", i + 1), r.clone()));
            outs.push(v.clone());
        }
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let cat = g.concat(&refs, 1);
        let z = self.post_inv.emit(g, &cat)?;
        let z = self.post_conv.emit(g, &z)?;
        stages.push(("agg.out".to_string(), z.clone()));
        let out = self.refine.emit(g, &z)?;
        let out = match self.cfg.task {
            Task::Ivif => out,
            Task::Pan { .. } => g.add(&out, vis_y),
        };
        stages.push(("out".to_string(), out));
        Ok(stages)
    }
}
