"""The official ONNX graph evaluated in float64: the exact function the official runtime approximates in fp32.

ONNX Runtime's CPU kernels are fp32-only for convolutions, so the graph runs in ``onnx.reference`` (numpy)
instead: every float32 initializer, ``Constant`` and ``Cast`` target is widened to float64, the weights keep
their exact float32 values. Comparing this with our model evaluated in float64 takes fp32 rounding out of both
sides, which is what makes a parity check decisive on the lines where a network amplifies rounding (a wrong
LayerNorm epsilon changes the output there by 2.5e-4; a correct conversion by < 1e-5).
"""

import numpy as np

from .errors import ConversionError


def _widen(model):
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    for i, t in enumerate(graph.initializer):
        if t.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float64), attr.t.name))
            elif node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.DOUBLE
    for value in list(graph.input) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    del graph.value_info[:]
    return model


def _exact_ops():
    from onnx.reference.op_run import OpRun

    class BatchNormalization(OpRun):
        """Inference BatchNorm for every opset (onnx.reference treats a ``momentum`` attribute as training)."""

        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=1e-5, momentum=None, training_mode=None, spatial=None,
                 is_test=None):
            shape = (-1,) + (1,) * (x.ndim - 2)
            inv = scale.reshape(shape) / np.sqrt(var.reshape(shape) + epsilon)
            return ((x - mean.reshape(shape)) * inv + bias.reshape(shape),)

    class HardSwish(OpRun):
        """``x * clip(x / 6 + 1/2, 0, 1)`` with alpha exactly 1/6 as the operator is specified (onnx.reference
        evaluates its function body, whose float attribute rounds 1/6 to float32)."""

        op_domain = ""

        def _run(self, x):
            return (x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,)

    return [BatchNormalization, HardSwish]


class Float64Reference:
    """``run(x) -> array``: the official ONNX graph's final output, computed in float64."""

    def __init__(self, onnx_path):
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = _widen(onnx.load(str(onnx_path)))
        try:
            self.evaluator = ReferenceEvaluator(model, new_ops=_exact_ops())
        except Exception as exc:  # an op the reference implementation lacks
            raise ConversionError(f"{onnx_path}: cannot evaluate the graph in float64: {exc}") from exc
        self.input_name = model.graph.input[0].name
        self.output_name = model.graph.output[0].name

    def run(self, x):
        return self.evaluator.run([self.output_name], {self.input_name: np.asarray(x, dtype=np.float64)})[0]
