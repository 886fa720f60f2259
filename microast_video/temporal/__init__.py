"""temporal"""
