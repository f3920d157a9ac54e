"""Consent per purpose (PIPL 个人信息保护法): which purposes a workspace processes personal data for,
and what each person said about each purpose, when, through which channel and on what evidence.

Records are append-only; a person's current consent to a purpose is their latest record, read over the
person and everyone merged into them (the One ID family), so merges and unmerges need no rewriting.
"""
