//! What one frame costs a model at a pinned size: multiply-accumulates counted by tract's own
//! cost model, and which ops and matmul kernels the optimised plan ended up with (so a bench
//! report says whether a frame ran on, say, `avx512vnni_mmm_i32_8x8` or `fma_mmm_f32_8x8`).

use std::collections::BTreeMap;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::Cost;
use tract_onnx::tract_core::ops::matmul::optimized::OptMatMul;

use crate::ops::qlinear_conv::QLinearConvU8;

/// The cost of one frame at a fixed size.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct PlanCost {
    /// Multiply-accumulates per frame in float (convolutions and matmuls; the DFT, the
    /// normalisations and element-wise ops are not counted, as tract does not count them).
    pub macs_float: u64,
    /// Multiply-accumulates per frame on 8-bit operands (quantized convolutions, matmuls).
    pub macs_int8: u64,
    /// Node count per op name in the optimised plan (e.g. `OptMatMul`, `DirectSpatialConv`).
    pub plan_ops: BTreeMap<String, usize>,
    /// The matrix-multiply kernels the optimised plan picked for this CPU, sorted.
    pub kernels: Vec<String>,
}

impl PlanCost {
    /// Counts MACs on `decluttered` (ops as the model declares them, before lowering) and
    /// lists ops and kernels of `optimized`, both pinned to the same size.
    pub(crate) fn of(decluttered: &TypedModel, optimized: &TypedModel) -> TractResult<PlanCost> {
        let mut cost = PlanCost::default();
        for node in decluttered.nodes() {
            let inputs = decluttered.node_input_facts(node.id)?;
            for (kind, count) in node.op.cost(&inputs)? {
                let Cost::FMA(dt) = kind else { continue };
                let count = u64::try_from(count.to_i64()?).unwrap_or(0);
                if dt.size_of() == 1 {
                    cost.macs_int8 += count;
                } else {
                    cost.macs_float += count;
                }
            }
        }
        for node in optimized.nodes() {
            *cost.plan_ops.entry(node.op.name().to_string()).or_default() += 1;
            if let Some(mm) = node.op_as::<OptMatMul>() {
                cost.kernels
                    .extend(mm.mmm.iter().map(|k| k.name().to_string()));
            }
            if node.op_is::<QLinearConvU8>() {
                let isa = crate::ops::simd::kernels().isa.as_str();
                cost.kernels.push(format!("ship-edge int8 conv ({isa})"));
            }
        }
        cost.kernels.sort();
        cost.kernels.dedup();
        Ok(cost)
    }

    /// All multiply-accumulates per frame.
    pub fn macs(&self) -> u64 {
        self.macs_float + self.macs_int8
    }
}
