"""Files: the types sent and kept (``types``), what a file is by its bytes (``signatures``),
a file to send (``outgoing``), files that arrive (``incoming``), and Supabase Storage's
private bucket (``storage``).

Nothing is imported here: each path imports the one module it uses.
"""
