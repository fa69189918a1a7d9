// Test rules shipped with pssupervise. The rule name becomes the malware name.

rule EICAR_Test_File
{
    meta:
        description = "The EICAR anti-virus test file"
    strings:
        $eicar = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE"
    condition:
        $eicar
}

rule PSS_Test_Marker
{
    meta:
        description = "pssupervise's own test signature"
    strings:
        $marker = "PSSUPERVISE-TEST-SIGNATURE-7f3a"
    condition:
        $marker
}
