"""The generated protobuf package matches proto/ (regenerate with `gridtwin proto generate`)."""

from gridtwin.app import codegen


def test_generated_code_is_up_to_date():
    assert codegen.check() == []
