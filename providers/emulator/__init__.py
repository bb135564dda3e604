"""The emulator lives in the top-level ``emulator`` package; this keeps ``python -m providers.emulator`` working."""
