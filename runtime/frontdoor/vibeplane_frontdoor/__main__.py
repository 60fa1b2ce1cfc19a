"""`python -m vibeplane_frontdoor`: the image's entrypoint (same as `vibeplane-frontdoor`)."""

from vibeplane_frontdoor.cli import main

main()
