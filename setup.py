"""ppocr-torch: PaddleOCR's text-recognition models, converted exactly and running natively in PyTorch."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def _version():
    for line in (ROOT / "ppocr_torch" / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=")[1].strip().strip('"')
    raise RuntimeError("no __version__")


setup(
    name="ppocr-torch",
    version=_version(),
    description="PaddleOCR text-recognition models (PP-OCRv2 to PP-OCRv6) converted exactly to PyTorch",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["ppocr_torch", "ppocr_torch.*"]),
    package_data={"ppocr_torch": ["zoo/*.json", "zoo/page/*.json", "dicts/*.txt", "weights/*.pth", "samples/*.png"]},
    include_package_data=False,
    install_requires=[
        "torch>=2.1",
        "numpy",
        "opencv-python-headless",
        "requests",
        "tqdm",
    ],
    extras_require={
        # ppocr_torch.export / `ppocr-torch export`: writing ONNX files (onnxruntime only to verify them)
        "export": ["onnx>=1.14", "onnxruntime>=1.16"],
        # build-time only: the conversion tool and the parity tests against the official runtimes
        "convert": ["onnx>=1.14", "onnxruntime>=1.16", "paddlepaddle>=3.0", "pyyaml"],
        # fine-tuning (ppocr_torch.training, `ppocr-torch train`): kornia for augmentation, lmdb for LMDB data;
        # both imported only when used
        "train": ["kornia>=0.7", "lmdb>=1.4"],
        # page OCR (ppocr_torch.ocr, `ppocr-torch ocr`): pyclipper for DB post-processing's polygon offset (the library
        # PaddleOCR uses), Pillow for `--draw`'s text; both imported only when used
        "ocr": ["pyclipper>=1.3", "pillow"],
        # ppocr_torch.ray / `ppocr-torch recognize --ray`: Ray Data (map_batches with concurrency=: Ray 2.9);
        # imported only when used
        "ray": ["ray[data]>=2.9"],
        # everything the test suite needs (requirements-test.txt adds the runtime dependencies and build tools)
        "test": ["pytest>=7", "pillow", "onnx>=1.14", "onnxruntime>=1.16", "pyyaml", "paddlepaddle>=3.0", "setuptools",
                 "wheel", "kornia>=0.7", "lmdb>=1.4", "hypothesis>=6.100", "ray[data]>=2.9", "matplotlib",
                 "pyclipper>=1.3", "rapidocr==3.10.0"],
    },
    entry_points={"console_scripts": ["ppocr-torch = ppocr_torch.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
