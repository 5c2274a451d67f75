"""Use cases that own a transaction: what a handler asks for, done all or nothing."""
