"""Alias of ``python -m benchmarks.device_check`` (the GPU check lives in benchmarks/): same arguments, same exit status."""
import os
import sys

if __name__ == "__main__":  # benchmarks/ is not installed: run it with the repository root importable
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.device_check", *sys.argv[1:]],
              dict(os.environ, PYTHONPATH=path))
