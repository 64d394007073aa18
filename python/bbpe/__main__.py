from bbpe.cli import main

raise SystemExit(main())
