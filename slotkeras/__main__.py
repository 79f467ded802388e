"""`python -m slotkeras {train,evaluate,predict,convert} ...`"""

import sys

from slotkeras.cli import main

if __name__ == "__main__":
    sys.exit(main())
