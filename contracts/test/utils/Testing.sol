// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @dev The forge cheatcodes these tests call, and nothing more. forge answers
/// calls to the cheatcode address itself; no contract lives there, so this
/// interface is the whole dependency. Add a declaration here when a test needs
/// another cheatcode (the signature must match forge's exactly).
interface Vm {
    // Accounts and signing.
    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);

    // Environment of the next call, or of the rest of the test.
    function warp(uint256 timestamp) external;
    function chainId(uint256 newChainId) external;
    function prank(address sender) external;

    // Expectations about the next call.
    function expectRevert(bytes calldata revertData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter)
        external;

    // Formatting for assertion messages.
    function toString(uint256 value) external pure returns (string memory);
    function toString(address value) external pure returns (string memory);
    function toString(bytes32 value) external pure returns (string memory);
}

/// @dev A minimal base for forge tests: the cheatcode handle, assertions that
/// revert (forge fails a test whose call reverts), and `bound` for fuzz inputs.
abstract contract Testing {
    /// forge's fixed cheatcode address, derived as below by convention.
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    // --------------------------------------------------------------
    // Assertions. Each overload has a variant taking a message that is
    // printed before the two values, to tell apart asserts in one test.
    // --------------------------------------------------------------

    function assertTrue(bool condition) internal pure {
        assertTrue(condition, "");
    }

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) fail(message, "expected true, got false");
    }

    function assertFalse(bool condition) internal pure {
        assertFalse(condition, "");
    }

    function assertFalse(bool condition, string memory message) internal pure {
        if (condition) fail(message, "expected false, got true");
    }

    function assertEq(bool left, bool right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(bool left, bool right, string memory message) internal pure {
        if (left != right) fail(message, mismatch(boolString(left), boolString(right)));
    }

    function assertEq(uint256 left, uint256 right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(uint256 left, uint256 right, string memory message) internal pure {
        if (left != right) fail(message, mismatch(vm.toString(left), vm.toString(right)));
    }

    function assertEq(address left, address right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(address left, address right, string memory message) internal pure {
        if (left != right) fail(message, mismatch(vm.toString(left), vm.toString(right)));
    }

    function assertEq(bytes32 left, bytes32 right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(bytes32 left, bytes32 right, string memory message) internal pure {
        if (left != right) fail(message, mismatch(vm.toString(left), vm.toString(right)));
    }

    function assertEq(string memory left, string memory right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(string memory left, string memory right, string memory message) internal pure {
        // Strings cannot be compared with ==; equal hashes mean equal bytes.
        if (keccak256(bytes(left)) != keccak256(bytes(right))) {
            fail(message, mismatch(string.concat('"', left, '"'), string.concat('"', right, '"')));
        }
    }

    // --------------------------------------------------------------
    // Fuzzing
    // --------------------------------------------------------------

    /// Maps any `x` into [min, max]. A value already in range is kept as it
    /// is, so the fuzzer's edge values (0, min, max) still reach the test;
    /// others wrap around by modulo, which keeps every value reachable.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "Testing.bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 span = max - min;
        // The range is all of uint256 only when span is the maximum, and then
        // every x was already in range above; so span + 1 cannot overflow.
        return min + x % (span + 1);
    }

    // --------------------------------------------------------------
    // Internals
    // --------------------------------------------------------------

    function mismatch(string memory left, string memory right) private pure returns (string memory) {
        return string.concat(left, " != ", right);
    }

    function boolString(bool value) private pure returns (string memory) {
        return value ? "true" : "false";
    }

    /// Reverts with "assertion failed: [message: ]detail", which forge shows
    /// as the test's failure reason.
    function fail(string memory message, string memory detail) private pure {
        string memory prefix = bytes(message).length == 0 ? "" : string.concat(message, ": ");
        revert(string.concat("assertion failed: ", prefix, detail));
    }
}
