from streamact.cli.main import main

raise SystemExit(main())
