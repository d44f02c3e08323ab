"""The WPPConnect host: its routes (``client``; those reading back what it holds in
``read_back``), what its answers mean (``answers``), the HTTP under them (``http``), calls with
one session's token (``session``), the clients of a container and the host pool
(``directory``), and the operator's command (``cli``).

Nothing is imported here: each path imports the one module it uses.
"""
