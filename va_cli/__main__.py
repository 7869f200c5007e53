import sys

from va_cli.main import main

sys.exit(main())
