"""Runs the ONNX checker, with full shape inference, on every model named on the command line.

    python3 tests/onnx/check_models.py a.onnx b.onnx ...

Prints one line per model and exits 1 if any fails; exits 77 (the ctest skip code) when the onnx package
is not importable.
"""
import sys

try:
    import onnx
    import onnx.checker
except ImportError as e:  # pragma: no cover
    print(f"check_models: SKIP: python onnx package not available ({e})")
    sys.exit(77)

failed = 0
for path in sys.argv[1:]:
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"checker: {path}: ok (onnx {onnx.__version__}, opset "
              f"{model.opset_import[0].version}, {len(model.graph.node)} nodes: {' '.join(ops)})")
    except Exception as e:  # noqa: BLE001 - every failure is reported
        failed += 1
        print(f"checker: {path}: FAILED: {e}")
sys.exit(1 if failed else 0)
