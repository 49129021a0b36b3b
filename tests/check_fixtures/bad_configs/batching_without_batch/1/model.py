"""fixture"""
