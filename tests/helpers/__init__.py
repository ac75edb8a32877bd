"""Helpers shared by test modules (builders, fixtures, browser tools, tiny assets); no tests here."""
