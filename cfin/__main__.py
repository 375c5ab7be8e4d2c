from cfin.cli import main

raise SystemExit(main())
