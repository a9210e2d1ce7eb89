#!/usr/bin/env python
from redes.cli import main

if __name__ == "__main__":
    main()
