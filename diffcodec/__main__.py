from diffcodec.cli import main

main()
