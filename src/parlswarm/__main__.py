from parlswarm.cli import main

main()
