"""Pinjam: a small loan marketplace (Flask + requests + SQLite) that borrows from one lender."""
