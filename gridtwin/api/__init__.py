"""Generated from proto/ by `gridtwin proto generate`. Do not edit."""
