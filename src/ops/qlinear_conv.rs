//! ship-edge's kernel for the standard ONNX `QLinearConv`: the int8 convolutions of
//! `ship-tools quantize`'s models.
//!
//! tract lowers `QLinearConv` to an eager im2col plus its int8 matmul. SHIP's convolutions
//! have 1 to 24 input channels, so the matmuls are thin (K = 9·C) and the im2col copy, nine
//! times the input, dominates: the `edge` model ran 5× slower in int8 than in f32 at 640x480
//! (70% of the time in `Im2col`). This op packs the input once by channel quads (one pass over
//! u8 pixels, with the padding) and runs a direct convolution on it with the SIMD table's
//! [`QConvRowFn`](super::simd::QConvRowFn) (`vpdpbusd` on AVX-512 VNNI), requantizing in the
//! same pass.
//!
//! The model file stays standard ONNX (onnxruntime runs it): the loader's `QLinearConv` parser
//! is replaced, and every node this op does not cover goes to tract's own parser. Covered:
//! 2-D, stride 1, dilation 1, group 1, explicit pads, u8 input and output, i8 weights with zero
//! points 0 (per tensor or per output channel), i32 bias, and every scale, zero point, weight
//! and bias an initializer (read at load time and packed once).
//!
//! Tolerance against tract's lowering: the same integer sums; the requantization rounds
//! x_scale·w_scale/y_scale in f32, so an output may differ by one step where the exact value
//! lies within an f32 rounding of a half step.

use rayon::prelude::*;
use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

use super::simd::{self, Kernels, QConvGeometry, QRow, Requant};
use super::takeover;

/// The standard op type this kernel takes over.
pub const OP_TYPE: &str = "QLinearConv";
/// Key under which [`super::register`] keeps tract's own `QLinearConv` parser, for the nodes
/// this op does not cover.
pub const TRACT_PARSER_KEY: &str = "ship-edge.tract.QLinearConv";
/// Name of the op in a plan (`bench --profile`, `inspect`).
pub const PLAN_NAME: &str = "ShipQLinearConv";

/// A stride-1 u8 × i8 convolution with its weights packed for [`simd::QConvRowFn`].
#[derive(Debug, Clone, PartialEq)]
pub struct QLinearConvU8 {
    cin: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    /// Top, left, bottom, right.
    pads: [usize; 4],
    x_zero_point: u8,
    /// `[cout][quads][kh][kw]` words of four i8 weights (see [`simd::QConvRowFn`]).
    weights: Vec<i32>,
    requant: Requant,
    /// f32 output (a fused dequantization) instead of u8.
    dequantized: bool,
    /// ONNX inputs of the node (8 or 9): all but the first are constants the op already holds.
    inputs: usize,
}

impl Eq for QLinearConvU8 {}

/// ONNX parser: this op where the node fits it, tract's otherwise.
pub fn parse(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let ours = QLinearConvU8::from_node(ctx, node)?.map(|op| inference_wrap(op, 1, rules));
    takeover::parse_or_tract(ctx, node, TRACT_PARSER_KEY, ours)
}

/// Parser of the in-memory node [`qconv_fusion`](super::qconv_fusion) makes: this op with the
/// activation in its requantization, and with f32 output where it also took over the
/// dequantization. There is no other path for it, so a node outside what the kernel covers is
/// an error.
pub fn parse_fused(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    use super::qconv_fusion::{DEQUANTIZE, FUSED_OP_TYPE, NEGATIVE_SLOPE, PREACTIVATION_RANGE};
    let Some(op) = QLinearConvU8::from_node(ctx, node)? else {
        bail!(
            "{FUSED_OP_TYPE} node {:?}: not a convolution ship-edge's int8 kernel runs",
            node.name
        );
    };
    let slope = node.get_attr::<f32>(NEGATIVE_SLOPE)?;
    let range = node.get_attr_tvec::<f32>(PREACTIVATION_RANGE)?;
    ensure!(
        (0.0..=1.0).contains(&slope)
            && range.len() == 2
            && range.iter().all(|v| v.is_finite())
            && range[0] <= range[1],
        "{FUSED_OP_TYPE} node {:?}: expects {NEGATIVE_SLOPE} in [0, 1] and an ordered \
         {PREACTIVATION_RANGE} pair, got {slope} and {range:?}",
        node.name
    );
    let mut requant = op.requant.with_activation((range[0], range[1]), slope);
    let dequantized = node.get_attr_opt::<i64>(DEQUANTIZE)?.unwrap_or(0) != 0;
    if dequantized {
        // from_node accepted the node, so its output scale (input 6) is a positive scalar.
        let step = takeover::constant(ctx, node, &node.input[6])?
            .context("output scale")?
            .cast_to_scalar::<f32>()?;
        requant = requant.dequantized(step);
    }
    let op = QLinearConvU8 {
        requant,
        dequantized,
        ..op
    };
    Ok((inference_wrap(op, 1, rules), vec![]))
}

impl QLinearConvU8 {
    /// The op for `node`, or `None` when the node is outside what it covers (tract's parser
    /// then takes it). Errors only for a malformed node.
    pub(crate) fn from_node(ctx: &ParsingContext, node: &NodeProto) -> TractResult<Option<Self>> {
        let ones = |attr: &str| -> TractResult<bool> {
            Ok(node
                .get_attr_opt_tvec::<i64>(attr)?
                .is_none_or(|v| v.iter().all(|&s| s == 1)))
        };
        let explicit_pads = node
            .get_attr_opt::<&str>("auto_pad")?
            .is_none_or(|p| p == "NOTSET");
        if !(explicit_pads
            && ones("strides")?
            && ones("dilations")?
            && node.get_attr_opt::<i64>("group")?.unwrap_or(1) == 1
            && matches!(node.input.len(), 8 | 9)
            && node.input[..8].iter().all(|n| !n.is_empty()))
        {
            return Ok(None);
        }
        // An empty name is ONNX's "optional input not given": here, only the bias may be.
        let given = takeover::given_inputs(node);
        let mut constants = Vec::with_capacity(8);
        for &name in &given[1..] {
            let Some(tensor) = takeover::constant(ctx, node, name)? else {
                return Ok(None);
            };
            constants.push(tensor);
        }
        let (x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp) = (
            &constants[0],
            &constants[1],
            &constants[2],
            &constants[3],
            &constants[4],
            &constants[5],
            &constants[6],
        );
        let (Some(x_scale), Some(x_zp), Some(y_scale), Some(y_zp)) = (
            takeover::scale_value(x_scale),
            takeover::zero_point_u8(x_zp),
            takeover::scale_value(y_scale),
            takeover::zero_point_u8(y_zp),
        ) else {
            return Ok(None);
        };
        if w.datum_type() != i8::datum_type() || w.rank() != 4 {
            return Ok(None);
        }
        let [cout, cin, kh, kw] = [w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]];
        if cout == 0 || cin == 0 || kh == 0 || kw == 0 {
            return Ok(None);
        }
        let zero_weights_zp = w_zp.datum_type() == i8::datum_type()
            && w_zp
                .try_as_plain_ram()?
                .as_slice::<i8>()?
                .iter()
                .all(|&z| z == 0);
        let w_scales: Vec<f32> = if w_scale.datum_type() == f32::datum_type() {
            w_scale.try_as_plain_ram()?.as_slice::<f32>()?.to_vec()
        } else {
            return Ok(None);
        };
        let per_channel_ok = matches!(w_scales.len(), 1) || w_scales.len() == cout;
        if !(zero_weights_zp
            && matches!(w_zp.len(), 1) | (w_zp.len() == cout)
            && per_channel_ok
            && w_scales.iter().all(|s| s.is_finite() && *s > 0.0))
        {
            return Ok(None);
        }
        let bias: Vec<i32> = match constants.get(7) {
            None => vec![0; cout],
            Some(b) if b.datum_type() == i32::datum_type() && b.len() == cout => {
                b.try_as_plain_ram()?.as_slice::<i32>()?.to_vec()
            }
            Some(_) => return Ok(None),
        };
        if let Some(shape) = node.get_attr_opt_tvec::<i64>("kernel_shape")?
            && shape.as_slice() != [kh as i64, kw as i64]
        {
            bail!(
                "{OP_TYPE} node {:?}: kernel_shape {shape:?} disagrees with weights {:?}",
                node.name,
                w.shape()
            );
        }
        let pads = match node.get_attr_opt_tvec::<i64>("pads")? {
            None => [0; 4],
            // ONNX order: top, left, bottom, right. A pad as wide as the kernel only adds
            // rows of bias; such models are left to tract (and keep the sizes below small).
            Some(p)
                if p.len() == 4
                    && p.iter().all(|&v| v >= 0)
                    && p[0].max(p[2]) < kh as i64
                    && p[1].max(p[3]) < kw as i64 =>
            {
                [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
            }
            Some(_) => return Ok(None),
        };
        let w = w.try_as_plain_ram()?;
        let w = w.as_slice::<i8>()?;
        let quads = cin.div_ceil(4);
        let mut packed = vec![0i32; cout * quads * kh * kw];
        let mut requant = Requant::new(
            Vec::with_capacity(cout),
            Vec::with_capacity(cout),
            i32::from(y_zp),
        );
        for o in 0..cout {
            let mut weight_sum = 0i64;
            for c in 0..cin {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let v = w[((o * cin + c) * kh + ky) * kw + kx];
                        weight_sum += i64::from(v);
                        let word = &mut packed[((o * quads + c / 4) * kh + ky) * kw + kx];
                        *word |= i32::from(v as u8) << (8 * (c % 4));
                    }
                }
            }
            // The sums run over raw u8 values; the zero point's share moves into the bias.
            let corrected = i64::from(bias[o]) - i64::from(x_zp) * weight_sum;
            let w_scale = w_scales[if w_scales.len() == 1 { 0 } else { o }];
            let scale = (f64::from(x_scale) * f64::from(w_scale) / f64::from(y_scale)) as f32;
            match i32::try_from(corrected) {
                Ok(b) if scale.is_normal() => {
                    requant.bias.push(b);
                    requant.scale.push(scale);
                }
                // Outside what i32 sums and an f32 scale hold: tract's lowering decides.
                _ => return Ok(None),
            }
        }
        Ok(Some(QLinearConvU8 {
            cin,
            cout,
            kh,
            kw,
            pads,
            x_zero_point: x_zp,
            weights: packed,
            requant,
            dequantized: false,
            inputs: given.len(),
        }))
    }

    /// u8, or f32 where the op took over the dequantization behind it.
    fn output_type(&self) -> DatumType {
        if self.dequantized {
            f32::datum_type()
        } else {
            u8::datum_type()
        }
    }

    /// Output height and width for an input `h` × `w`, if the kernel fits the padded input.
    fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let [t, l, b, r] = self.pads;
        let (rows, cols) = (h + t + b, w + l + r);
        (rows >= self.kh && cols >= self.kw).then(|| (rows - self.kh + 1, cols - self.kw + 1))
    }

    fn output_dims(&self, shape: &[TDim]) -> TVec<TDim> {
        let [t, l, b, r] = self.pads;
        let spatial =
            |d: &TDim, pad: usize, k: usize| d.clone() + TDim::from(pad + 1) - TDim::from(k);
        tvec![
            shape[0].clone(),
            self.cout.to_dim(),
            spatial(&shape[2], t + b, self.kh),
            spatial(&shape[3], l + r, self.kw),
        ]
    }

    /// Runs the convolution on a `[N, cin, H, W]` u8 tensor: a u8 result, or an f32 one where
    /// the op took over the dequantization behind it.
    pub fn run(&self, x: &Tensor) -> TractResult<Tensor> {
        if self.dequantized {
            self.run_into::<f32>(x)
        } else {
            self.run_into::<u8>(x)
        }
    }

    fn run_into<T: RowValue>(&self, x: &Tensor) -> TractResult<Tensor> {
        ensure!(
            x.datum_type() == u8::datum_type() && x.rank() == 4 && x.shape()[1] == self.cin,
            "{OP_TYPE}: expects a u8 [N,{},H,W] input, got {:?} {:?}",
            self.cin,
            x.datum_type(),
            x.shape()
        );
        let (n, h, w) = (x.shape()[0], x.shape()[2], x.shape()[3]);
        ensure!(
            h * w > 0 || n == 0,
            "{OP_TYPE}: empty {h}x{w} input {:?}",
            x.shape()
        );
        let Some((ho, wo)) = self.output_size(h, w) else {
            bail!(
                "{OP_TYPE}: a {}x{} kernel does not fit a {h}x{w} input with pads {:?}",
                self.kh,
                self.kw,
                self.pads
            );
        };
        let [top, _, bottom, _] = self.pads;
        let g = QConvGeometry {
            quads: self.cin.div_ceil(4),
            rows: h + top + bottom,
            cols: QConvGeometry::cols_for(wo, self.kw),
            kh: self.kh,
            kw: self.kw,
            cout: self.cout,
            wo,
        };
        // SAFETY: as tract's own ops fill theirs: the tensor is plain u8 or f32 memory that
        // `convolve` writes entirely (every row of every channel plane, by construction of its
        // jobs) before the op returns it, and nothing reads it before.
        let mut y = unsafe { Tensor::uninitialized_dt(T::datum_type(), &[n, self.cout, ho, wo])? };
        if n * ho * wo == 0 {
            return Ok(y);
        }
        let kernels = simd::kernels();
        let x = x.try_as_plain_ram()?;
        let x = x.as_slice::<u8>()?;
        let mut packed = vec![self.x_zero_point; g.packed_len()];
        let mut y_view = y.try_as_plain_ram_mut()?;
        let y_all = y_view.as_slice_mut::<T>()?;
        let work = |parallel: bool| {
            for (image, y_image) in x
                .chunks_exact(self.cin * h * w)
                .zip(y_all.chunks_exact_mut(self.cout * ho * wo))
            {
                self.pack(kernels, image, h, w, &g, &mut packed, parallel);
                self.convolve(kernels, &packed, &g, ho, y_image, parallel);
            }
        };
        super::on_tract_threads(work);
        Ok(y)
    }

    /// Packs one `[cin, h, w]` image into `packed` (pre-filled with the input zero point, which
    /// the padding keeps).
    #[allow(clippy::too_many_arguments)]
    fn pack(
        &self,
        kernels: &Kernels,
        image: &[u8],
        h: usize,
        w: usize,
        g: &QConvGeometry,
        packed: &mut [u8],
        parallel: bool,
    ) {
        let [top, left, ..] = self.pads;
        let filler = vec![self.x_zero_point; w];
        let job = |(i, packed_row): (usize, &mut [u8])| {
            let (q, row) = (i / g.rows, i % g.rows);
            if !(top..top + h).contains(&row) {
                return;
            }
            let channel_row = |c: usize| -> &[u8] {
                if c < self.cin {
                    let start = (c * h + row - top) * w;
                    &image[start..start + w]
                } else {
                    &filler
                }
            };
            let rows = std::array::from_fn(|j| channel_row(4 * q + j));
            (kernels.pack_quad_row)(rows, &mut packed_row[4 * left..4 * (left + w)]);
        };
        if parallel {
            packed.par_chunks_mut(4 * g.cols).enumerate().for_each(job);
        } else {
            packed.chunks_mut(4 * g.cols).enumerate().for_each(job);
        }
    }

    /// Convolves packed rows into one `[cout, ho, wo]` output image, a row per job.
    fn convolve<T: RowValue>(
        &self,
        kernels: &Kernels,
        packed: &[u8],
        g: &QConvGeometry,
        ho: usize,
        y_image: &mut [T],
        parallel: bool,
    ) {
        assert_eq!(y_image.len(), self.cout * ho * g.wo);
        // Output row oy of every channel plane, in channel order: what the kernel writes for oy.
        let mut jobs: Vec<Vec<&mut [T]>> = (0..ho).map(|_| Vec::with_capacity(self.cout)).collect();
        for (i, row) in y_image.chunks_exact_mut(g.wo).enumerate() {
            jobs[i % ho].push(row);
        }
        let job = |(oy, rows): (usize, &mut Vec<&mut [T]>)| {
            (kernels.qconv_row)(packed, &self.weights, &self.requant, g, oy, T::row(rows));
        };
        if parallel {
            jobs.par_iter_mut().enumerate().for_each(job);
        } else {
            jobs.iter_mut().enumerate().for_each(job);
        }
    }
}

/// An output value type of the kernel: how a row buffer of it reaches [`simd::QConvRowFn`].
trait RowValue: Datum + Copy {
    fn row<'a, 'b>(rows: &'a mut [&'b mut [Self]]) -> QRow<'a, 'b>;
}

impl RowValue for u8 {
    fn row<'a, 'b>(rows: &'a mut [&'b mut [u8]]) -> QRow<'a, 'b> {
        QRow::U8(rows)
    }
}

impl RowValue for f32 {
    fn row<'a, 'b>(rows: &'a mut [&'b mut [f32]]) -> QRow<'a, 'b> {
        QRow::F32(rows)
    }
}

fn rules<'p>(
    op: &dyn Op,
    s: &mut Solver,
    inputs: &'p [TensorProxy],
    outputs: &'p [TensorProxy],
) -> InferenceResult {
    let op = op
        .downcast_ref::<QLinearConvU8>()
        .context("QLinearConv rules on another op")?;
    check_input_arity(inputs, op.inputs)?;
    check_output_arity(outputs, 1)?;
    s.equals(&inputs[0].datum_type, u8::datum_type())?;
    s.equals(&outputs[0].datum_type, op.output_type())?;
    s.equals(&inputs[0].rank, 4)?;
    s.equals(&outputs[0].rank, 4)?;
    let [top, left, bottom, right] = op.pads;
    s.equals(&inputs[0].shape[1], op.cin.to_dim())?;
    s.equals(&outputs[0].shape[0], &inputs[0].shape[0])?;
    s.equals(&outputs[0].shape[1], op.cout.to_dim())?;
    s.equals(
        &outputs[0].shape[2],
        inputs[0].shape[2].bex() + (top + bottom + 1).to_dim() - op.kh.to_dim(),
    )?;
    s.equals(
        &outputs[0].shape[3],
        inputs[0].shape[3].bex() + (left + right + 1).to_dim() - op.kw.to_dim(),
    )?;
    Ok(())
}

impl Op for QLinearConvU8 {
    fn name(&self) -> StaticName {
        PLAN_NAME.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let activation = match self.requant.negative_slope {
            1.0 => String::new(),
            0.0 => ", fused ReLU".into(),
            slope => format!(", fused LeakyReLU({slope})"),
        };
        Ok(vec![format!(
            "{}x{} kernel, {} -> {} channels, pads {:?}{activation}, {:?} output, int8 kernel {}",
            self.kh,
            self.kw,
            self.cin,
            self.cout,
            self.pads,
            self.output_type(),
            simd::kernels().isa.as_str()
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for QLinearConvU8 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        ensure!(!inputs.is_empty(), "{OP_TYPE}: no input");
        Ok(tvec!(self.run(&inputs[0])?.into_tvalue()))
    }
}

impl TypedOp for QLinearConvU8 {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(
            inputs.len() == self.inputs,
            "{OP_TYPE}: expects {} inputs, got {}",
            self.inputs,
            inputs.len()
        );
        let x = inputs[0];
        ensure!(
            x.datum_type == u8::datum_type() && x.rank() == 4 && x.shape[1] == self.cin.to_dim(),
            "{OP_TYPE}: expects a u8 [N,{},H,W] input, got {x:?}",
            self.cin
        );
        Ok(tvec!(
            self.output_type().fact(self.output_dims(x.shape.dims()))
        ))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let out = self.output_dims(inputs[0].shape.dims());
        let macs = out.iter().product::<TDim>() * (self.cin * self.kh * self.kw) as i64;
        Ok(tvec!((Cost::FMA(u8::datum_type()), macs)))
    }
}

#[cfg(test)]
mod tests {
    use tract_onnx::pb::tensor_proto::DataType;
    use tract_onnx::pb::{AttributeProto, ModelProto, attribute_proto::AttributeType};
    use tract_onnx::prelude::*;

    use super::super::takeover::test_models::{bytes, model, run, tensor, value_info};
    use super::*;

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: AttributeType::Ints as i32,
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    /// One convolution to test: shapes, attributes and quantization parameters.
    #[derive(Clone)]
    struct Case {
        cin: usize,
        cout: usize,
        k: usize,
        pads: [i64; 4],
        strides: i64,
        h: usize,
        w: usize,
        per_channel: bool,
        bias: bool,
    }

    impl Case {
        fn proto(&self, seed: u64) -> ModelProto {
            let Case { cin, cout, k, .. } = *self;
            let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>();
            let w_scales: Vec<f32> = if self.per_channel {
                (0..cout).map(|o| 0.002 + 0.001 * o as f32).collect()
            } else {
                vec![0.003]
            };
            let mut initializer = vec![
                tensor("x_scale", DataType::Float, &[], f32s(&[0.02])),
                tensor("x_zp", DataType::Uint8, &[], vec![117]),
                tensor(
                    "w",
                    DataType::Int8,
                    &[cout, cin, k, k],
                    bytes(cout * cin * k * k, seed),
                ),
                tensor(
                    "w_scale",
                    DataType::Float,
                    &[w_scales.len()],
                    f32s(&w_scales),
                ),
                tensor("w_zp", DataType::Int8, &[], vec![0]),
                tensor("y_scale", DataType::Float, &[], f32s(&[0.05])),
                tensor("y_zp", DataType::Uint8, &[], vec![131]),
            ];
            let mut inputs: Vec<String> = [
                "x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp",
            ]
            .map(String::from)
            .to_vec();
            if self.bias {
                let bias: Vec<u8> = (0..cout as i32)
                    .flat_map(|o| ((o - 3) * 977).to_le_bytes())
                    .collect();
                initializer.push(tensor("b", DataType::Int32, &[cout], bias));
                inputs.push("b".into());
            }
            let (ho, wo) = (
                (self.h as i64 + self.pads[0] + self.pads[2] - k as i64) / self.strides + 1,
                (self.w as i64 + self.pads[1] + self.pads[3] - k as i64) / self.strides + 1,
            );
            let node = NodeProto {
                op_type: OP_TYPE.into(),
                name: "conv".into(),
                input: inputs,
                output: vec!["y".into()],
                attribute: vec![
                    ints("pads", &self.pads),
                    ints("strides", &[self.strides; 2]),
                    ints("kernel_shape", &[k as i64; 2]),
                ],
                ..Default::default()
            };
            model(
                node,
                initializer,
                value_info("x", DataType::Uint8, &[1, cin, self.h, self.w]),
                value_info("y", DataType::Uint8, &[1, cout, ho as usize, wo as usize]),
            )
        }

        /// (ours, tract's) outputs, and the plan's op names under our loader.
        fn run_both(&self, seed: u64) -> (Vec<u8>, Vec<u8>, Vec<String>) {
            let proto = self.proto(seed);
            let x = Tensor::from_shape(
                &[1, self.cin, self.h, self.w],
                &bytes(self.cin * self.h * self.w, seed + 1),
            )
            .unwrap();
            let (ours, names) = run::<u8>(crate::ops::onnx(), &proto, x.clone());
            let (tracts, _) = run::<u8>(tract_onnx::onnx(), &proto, x);
            (ours, tracts, names)
        }
    }

    /// Our kernel against tract's lowering of the same node: the integer sums are the same, so
    /// only the requantization's rounding of the scale may move a value by one step, where the
    /// exact value lies within f32 rounding of a half step (rare).
    #[test]
    fn matches_tracts_qlinear_conv() {
        let base = Case {
            cin: 8,
            cout: 8,
            k: 3,
            pads: [1; 4],
            strides: 1,
            h: 11,
            w: 37,
            per_channel: false,
            bias: true,
        };
        let cases = [
            base.clone(),
            Case {
                cin: 1,
                cout: 2,
                k: 1,
                pads: [0; 4],
                ..base.clone()
            },
            Case {
                cin: 3,
                cout: 9,
                per_channel: true,
                ..base.clone()
            },
            Case {
                cin: 24,
                cout: 8,
                w: 16,
                ..base.clone()
            },
            Case {
                cin: 5,
                cout: 17,
                k: 3,
                pads: [2, 0, 1, 2],
                bias: false,
                ..base.clone()
            },
            Case {
                cin: 16,
                cout: 16,
                k: 1,
                pads: [0; 4],
                h: 3,
                w: 5,
                per_channel: true,
                ..base
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            let (ours, tracts, names) = case.run_both(i as u64 + 1);
            assert!(
                names.iter().any(|n| n == PLAN_NAME),
                "case {i}: plan {names:?}"
            );
            assert_eq!(ours.len(), tracts.len(), "case {i}");
            let off: Vec<i32> = ours
                .iter()
                .zip(&tracts)
                .map(|(a, b)| i32::from(*a) - i32::from(*b))
                .filter(|d| *d != 0)
                .collect();
            assert!(
                off.iter().all(|d| d.abs() <= 1) && off.len() * 100 <= ours.len(),
                "case {i}: {} of {} values differ: {:?}",
                off.len(),
                ours.len(),
                &off[..off.len().min(20)]
            );
            // Not a degenerate output: the values spread over the u8 range.
            let distinct = ours.iter().collect::<std::collections::BTreeSet<_>>().len();
            assert!(distinct > 20, "case {i}: only {distinct} distinct values");
        }
    }

    /// A node outside what our kernel covers (stride 2) still loads and runs, on tract's path.
    #[test]
    fn other_forms_fall_back_to_tract() {
        let case = Case {
            cin: 4,
            cout: 4,
            k: 3,
            pads: [1; 4],
            strides: 2,
            h: 9,
            w: 12,
            per_channel: false,
            bias: true,
        };
        let (ours, tracts, names) = case.run_both(7);
        assert!(!names.iter().any(|n| n == PLAN_NAME), "{names:?}");
        assert_eq!(ours, tracts);
    }

    /// An empty bias name is ONNX's "no bias": ours runs it, as the 8-input node.
    #[test]
    fn an_empty_bias_name_is_no_bias() {
        let case = Case {
            cin: 4,
            cout: 3,
            k: 3,
            pads: [1; 4],
            strides: 1,
            h: 5,
            w: 7,
            per_channel: false,
            bias: false,
        };
        let proto = case.proto(3);
        let mut with_empty = proto.clone();
        with_empty.graph.as_mut().unwrap().node[0]
            .input
            .push(String::new());
        let x = Tensor::from_shape(&[1, 4, 5, 7], &bytes(4 * 5 * 7, 4)).unwrap();
        let (expected, _) = run::<u8>(crate::ops::onnx(), &proto, x.clone());
        let (got, names) = run::<u8>(crate::ops::onnx(), &with_empty, x);
        assert!(names.iter().any(|n| n == PLAN_NAME), "{names:?}");
        assert_eq!(got, expected);
    }

    /// Pads as wide as the kernel are left to tract, which still runs the node.
    #[test]
    fn pads_as_wide_as_the_kernel_go_to_tract() {
        let case = Case {
            cin: 2,
            cout: 2,
            k: 1,
            pads: [1, 0, 0, 0],
            strides: 1,
            h: 3,
            w: 4,
            per_channel: false,
            bias: true,
        };
        let (ours, tracts, names) = case.run_both(5);
        assert!(!names.iter().any(|n| n == PLAN_NAME), "{names:?}");
        assert_eq!(ours, tracts);
    }

    /// Registering our ops twice keeps tract's parser reachable (no self-recursion).
    #[test]
    fn registering_twice_keeps_tracts_parser() {
        let mut onnx = crate::ops::onnx();
        crate::ops::register(&mut onnx);
        let key = onnx.op_register.0[TRACT_PARSER_KEY] as usize;
        assert_ne!(key, parse as *const () as usize);
    }
}
