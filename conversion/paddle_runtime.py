"""Paddle Inference as the reference runtime for Paddle inference exports (build-time only).

``PaddleRunner`` has the interface of ``conversion.parity.OnnxRunner``: ``run(x) -> {output name: array}``
with the model's final output first. Final outputs come from a Paddle Inference predictor on the CPU:
``optimize=True`` is Paddle Inference's default CPU configuration (IR fusion passes, oneDNN kernels),
``optimize=False`` plain Paddle kernels without IR passes; the two differ by fp32 rounding only and measure
the runtime's own spread, like ONNX Runtime's optimized and unoptimized sessions.

Intermediate tensors (``extra_outputs``, named as ``conversion.readers.paddle_inference`` names them) cannot
be fetched from a predictor; they are computed by Paddle's static-graph executor on the same program and
parameters, without optimisation passes.
"""

import contextlib
import sys

import numpy as np

from .errors import SourceFormatError

RUNTIME_NAME = "paddle_inference"


def runtime_version():
    import paddle

    return f"{RUNTIME_NAME} {paddle.__version__} (CPU)"


@contextlib.contextmanager
def _torch_single_thread():
    """Torch and Paddle share one OpenMP runtime in this process: while torch's pool holds more than one
    thread, Paddle's oneDNN kernels run 10-20x slower (measured here). Give Paddle the runtime to itself."""
    torch = sys.modules.get("torch")
    n = torch.get_num_threads() if torch is not None else 1
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)


class PaddleRunner:
    """A Paddle Inference predictor over an inference export, optionally exposing intermediate tensors."""

    def __init__(self, path, extra_outputs=(), optimize=True, threads=1):
        from .readers.paddle_inference import check_export

        model_path, params_path = check_export(path)  # Paddle crashes (SIGSEGV) on some corrupt programs
        self._files, self._threads, self.optimize = (model_path, params_path), int(threads), optimize
        self.onednn = bool(optimize)
        self.predictor = self._create()
        self.input_name = self.predictor.get_input_names()[0]
        self.output_names = list(self.predictor.get_output_names())
        self.extra_names = [n for n in dict.fromkeys(extra_outputs) if n not in self.output_names]
        self._program = None
        if self.extra_names:
            self._init_executor(model_path)

    def _create(self):
        import paddle.inference as pi

        model_path, params_path = self._files
        config = pi.Config(str(model_path), str(params_path))
        config.disable_gpu()
        if self.optimize:  # Paddle Inference's CPU default: IR fusion passes and oneDNN kernels
            config.switch_ir_optim(True)
            config.enable_mkldnn() if self.onednn else config.disable_mkldnn()
        else:  # plain Paddle CPU kernels (switching the IR passes off alone leaves oneDNN's in place)
            config.switch_ir_optim(False)
            config.disable_mkldnn()
        config.set_cpu_math_library_num_threads(self._threads)
        config.disable_glog_info()
        try:
            return pi.create_predictor(config)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else repr(exc)
            raise SourceFormatError(f"{model_path}: Paddle Inference could not load this export ({first})") from exc

    def _predict(self):
        """Run the predictor. Paddle 3's oneDNN executor cannot run some programs (the DB detectors' nearest
        upsampling: "ConvertPirAttribute2RuntimeAttribute not support ArrayAttribute<DoubleAttribute>"); the
        optimised runner then keeps the IR passes with Paddle's own CPU kernels (``self.onednn`` False)."""
        try:
            self.predictor.run()
        except NotImplementedError:
            if not self.onednn:
                raise
            self.onednn = False
            self.predictor = self._create()
            return False
        return True

    def _init_executor(self, model_path):
        import paddle

        from .readers.paddle_inference import load_program

        self._program = load_program(model_path)
        self._outputs = list(self._program.fetch_values)
        self._program.detach_fetch_ops()
        self._values = [self._program.value_by_name(n) for n in self.extra_names]
        self._feed = self._program.feed_names[0] if self._program.feed_names else self.input_name
        self._exe = paddle.static.Executor(paddle.CPUPlace())

    def run(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        with _torch_single_thread():
            for _ in range(2):  # a second time only when the oneDNN predictor was replaced (see _predict)
                handle = self.predictor.get_input_handle(self.input_name)
                handle.reshape(list(x.shape))
                handle.copy_from_cpu(x)
                if self._predict():
                    break
            outs = {n: self.predictor.get_output_handle(n).copy_to_cpu() for n in self.output_names}
            if self._program is not None:
                outs.update(zip(self.extra_names, self._run_executor(x)))
        return outs

    def _run_executor(self, x):
        import paddle

        was_dynamic = paddle.in_dynamic_mode()
        paddle.enable_static()
        try:
            with paddle.static.scope_guard(self._program.scope):
                res = self._exe.run(self._program.program, feed={self._feed: x},
                                    fetch_list=self._outputs + self._values)
        finally:
            if was_dynamic:
                paddle.disable_static()
        return [np.asarray(r) for r in res[len(self._outputs):]]
