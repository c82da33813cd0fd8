"""`python -m compiler` is the `drpc` command."""

from .cli import main

if __name__ == "__main__":
    main()
