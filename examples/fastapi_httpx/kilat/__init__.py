"""Kilat: a small async loan marketplace (FastAPI + httpx) that borrows from one lender."""
