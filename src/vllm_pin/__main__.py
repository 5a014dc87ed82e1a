"""`python -m vllm_pin` is the `vllm-pin` console script."""

import sys

from vllm_pin.cli import main

sys.exit(main())
