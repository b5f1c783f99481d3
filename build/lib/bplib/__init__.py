"""bplib: the small numpy library behind the backpropagation book.

Importing ``bplib`` loads numpy only; plotting (``bplib.viz``) and widgets load on first use.
"""

__version__ = "0.1.0"
