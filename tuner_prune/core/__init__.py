"""What every stage may use; it imports no other stage.

The doors: ``_keras`` binds tf_keras and tfmot, ``_kt`` keras-tuner's internals
(each private member behind one function). ``errors`` holds the errors the CLI
tells apart and words a failed trial's reason; ``metrics`` the one MSE and the
size arithmetic on plain arrays; ``plots`` draws the figures; ``quiet`` keeps
other libraries' lines off the terminal.
"""
