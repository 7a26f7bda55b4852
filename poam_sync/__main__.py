from poam_sync.cli import main

main()
