from kosi.cli import main

main()
