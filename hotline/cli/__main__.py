"""`python -m hotline.cli`: the `hotline` command, as the runner and the tests start its processes."""
from hotline.cli.main import main

main()
