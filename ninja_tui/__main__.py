from ninja_tui.cli.main import main

main()
