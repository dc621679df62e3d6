"""Tools around the program that are neither the product (components/) nor the rehearsal."""
