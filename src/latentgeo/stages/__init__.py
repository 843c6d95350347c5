"""One module per DVC stage that a notebook calls, named as the stage: each reads the stage's
inputs, calls the domain code, writes files and figures. Nothing imports a stage but the
notebooks, the CLI and the tests."""
