from societies.cli.main import main

main()
