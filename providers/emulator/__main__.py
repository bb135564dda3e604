"""``python -m providers.emulator`` (the command the README has always given): runs ``python -m emulator``."""

from emulator.__main__ import main

if __name__ == "__main__":
    main()
