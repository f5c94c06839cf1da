"""`python -m gpskit` runs the command line."""

from gpskit.cli import main

if __name__ == "__main__":
    main()
