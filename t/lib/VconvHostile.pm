package VconvHostile;

=head1 NAME

VconvHostile - hostile media, a recording loopback listener and other
helpers for the t/hostile_*.t tests

=head1 SYNOPSIS

    use lib 't/lib';
    use VconvHostile qw(:all);

    my $l = VconvHostile::Listener->new;      # forked loopback TCP server
    my $port = $l->port;
    ... $l->connections ...                   # list of first request lines
    $l->stop;

    hls_playlist($dir, 'name.m3u8', @uris);   # .m3u8 text
    ffconcat_list($dir, 'x.ffconcat', @files);
    avi_gab2_hls($dir, 'gab2.avi', $m3u8_text);   # AVI, GAB2 subtitle
    mov_dref($dir, $mp4, 'dref.mov', '/etc/passwd'); # 'url ' + 'alis'
    png_huge($dir, $png, 'huge.png', 64000, 64000);  # IHDR patched, CRC ok
    gif_huge($dir, $gif, 'huge.gif', 64000, 64000);  # logical screen
    mkv_patch_dims($mkv, 'huge.mkv', 64000, 64000);  # PixelWidth/Height
    ts_size_change($dir, 'change.ts', '320x240', '1280x720');
    many_streams_mkv($dir, 'many.mkv', 2000);
    mutate($bytes, $rng_seed) -> ($bytes, $description)
    vm_hwm($pid), vm_rss($pid)               # kB from /proc/<pid>/status
    slurp($file), spew($file, $bytes)

Everything is made at test time with ffmpeg or by hand in Perl; nothing
binary is committed.

=cut

use strict;
use warnings;

use Compress::Zlib qw(crc32);
use Exporter 'import';
use File::Spec;
use IO::Socket::INET;
use POSIX qw(_exit);
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(hls_playlist ffconcat_list avi_gab2_hls mov_dref
    png_huge gif_huge mkv_patch_dims ts_size_change many_streams_mkv
    many_tracks_mkv
    mutate vm_hwm vm_rss slurp spew ff mp4_atoms);
our %EXPORT_TAGS = (all => \@EXPORT_OK);


sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    my $d = <$fh>;
    return $d // '';
}

sub spew {
    my ($f, $d) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $d;
    close $fh or die "$f: $!";
    return $f;
}

# ffmpeg, quiet; dies with its output on failure
sub ff {
    my (@args) = @_;
    my @cmd = ('ffmpeg', '-nostdin', '-hide_banner', '-loglevel', 'error',
               '-y', @args);
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or _exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    die "ffmpeg failed: @cmd[0..($#cmd < 30 ? $#cmd : 30)]\n$out" if $?;
    return $out;
}


sub vm_status {
    my ($pid, $key) = @_;
    open my $fh, '<', "/proc/$pid/status" or return undef;
    while (<$fh>) {
        return $1 + 0 if /^\Q$key\E:\s+(\d+)\s+kB/;
    }
    return undef;
}

sub vm_hwm { vm_status($_[0], 'VmHWM') }
sub vm_rss { vm_status($_[0], 'VmRSS') }


# ------------------------------------------------------------ playlists

sub hls_playlist {
    my ($dir, $name, @uris) = @_;
    my $t = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n"
          . "#EXT-X-MEDIA-SEQUENCE:0\n";
    $t .= "#EXTINF:2.0,\n$_\n" for @uris;
    $t .= "#EXT-X-ENDLIST\n";
    return spew(File::Spec->catfile($dir, $name), $t);
}

sub ffconcat_list {
    my ($dir, $name, @files) = @_;
    my $t = "ffconcat version 1.0\n";
    $t .= "file $_\n" for @files;
    return spew(File::Spec->catfile($dir, $name), $t);
}


# ------------------------------------------------------------ AVI + GAB2

sub _chunk {
    my ($id, $data) = @_;
    my $c = $id . pack('V', length $data) . $data;
    $c .= "\0" if length($data) & 1;
    return $c;
}

sub _list {
    my ($type, @items) = @_;
    return _chunk('LIST', $type . join('', @items));
}

# An AVI with one tiny MJPEG-less "video" stream would need real frames;
# we keep a real video stream (raw 16x16 rgb24 frames, 'DIB ') so the
# demuxer has something to read, and a 'txts' subtitle stream whose one
# packet is the GAB2 header followed by the given playlist text (the
# 2017 "AVI GAB2 + HLS" file-disclosure trick).
sub avi_gab2_hls {
    my ($dir, $name, $payload, %o) = @_;
    my ($w, $h, $nframes) = (16, 16, $o{frames} // 10);
    my $fsize = $w * $h * 3;

    my $avih = pack('V14', 40000, $fsize * 25, 0, 0x10, $nframes, 0, 2,
                    $fsize, $w, $h, 0, 0, 0, 0);
    # strh: fccType fccHandler flags prio/lang initframes scale rate start
    #       length suggestedbuf quality samplesize rcFrame(4 x int16)
    my $strh_v = pack('a4a4VvvVVVVVVVVv4', 'vids', "\0\0\0\0", 0, 0, 0, 0,
                      1, 25, 0, $nframes, $fsize, 0xFFFFFFFF, 0, 0, 0, $w,
                      $h);
    # BITMAPINFOHEADER, BI_RGB, 24 bpp
    my $strf_v = pack('VllvvVVllVV', 40, $w, $h, 1, 24, 0, $fsize, 0, 0,
                      0, 0);
    my $strh_s = pack('a4a4VvvVVVVVVVVv4', 'txts', "\0\0\0\0", 0, 0, 0, 0,
                      1, 1000, 0, 1, 0, 0xFFFFFFFF, 0, 0, 0, 0, 0);
    my $strf_s = '';

    my $hdrl = _list('hdrl', _chunk('avih', $avih),
                     _list('strl', _chunk('strh', $strh_v),
                           _chunk('strf', $strf_v)),
                     _list('strl', _chunk('strh', $strh_s),
                           _chunk('strf', $strf_s)));

    my $desc = join '', map { pack('v', ord) } split //, "vconv-gab2\0";
    my $gab2 = "GAB2\0" . pack('v', 2) . pack('V', length $desc) . $desc
             . pack('v', 4) . pack('V', length $payload) . $payload;

    my @movi;
    my $frame = join '', map { pack('C3', ($_ * 7) & 255, 128, 64) }
                         0 .. $w * $h - 1;
    push @movi, _chunk('01tx', $gab2);
    push @movi, _chunk('00db', $frame) for 1 .. $nframes;
    my $movi = _list('movi', @movi);

    my $riff = 'AVI ' . $hdrl . $movi;
    my $data = 'RIFF' . pack('V', length $riff) . $riff;
    return spew(File::Spec->catfile($dir, $name), $data);
}


# ------------------------------------------------------------ MOV dref

# parses one level of ISO-BMFF boxes: list of [type, payload]
sub mp4_atoms {
    my ($data) = @_;
    my @a;
    my $pos = 0;
    while ($pos + 8 <= length $data) {
        my ($size, $type) = unpack('Na4', substr($data, $pos, 8));
        my $hdr = 8;
        if ($size == 1) {
            my ($hi, $lo) = unpack('NN', substr($data, $pos + 8, 8));
            $size = $hi * 4294967296 + $lo;
            $hdr = 16;
        } elsif ($size == 0) {
            $size = length($data) - $pos;
        }
        last if $size < $hdr || $pos + $size > length $data;
        push @a, [$type, substr($data, $pos + $hdr, $size - $hdr)];
        $pos += $size;
    }
    return @a;
}

sub _box { my ($t, $p) = @_; return pack('N', 8 + length $p) . $t . $p }

# rebuilds $data with the box at @path (types) replaced by $cb->(payload)
sub _rebuild {
    my ($data, $path, $cb) = @_;
    my ($want, @rest) = @$path;
    my $out = '';
    for my $a (mp4_atoms($data)) {
        my ($t, $p) = @$a;
        if ($t eq $want) {
            $p = @rest ? _rebuild($p, \@rest, $cb) : $cb->($p);
        }
        $out .= _box($t, $p);
    }
    return $out;
}

# A MOV (from an mp4 with moov at the end, so no chunk offset moves) whose
# video track's data reference says "the media is in another file": a
# 'url ' entry with flags 0 and the path, and an 'alis' entry (Mac alias
# record) whose absolute path tag names the file too, picked by stsd.
sub mov_dref {
    my ($dir, $src, $name, $target) = @_;
    my $data = slurp($src);
    my @top = mp4_atoms($data);
    my ($first_moov) = grep { $top[$_][0] eq 'moov' } 0 .. $#top;
    my ($first_mdat) = grep { $top[$_][0] eq 'mdat' } 0 .. $#top;
    die "mov_dref: need moov after mdat in $src"
        unless defined $first_moov && defined $first_mdat
            && $first_moov > $first_mdat;

    my $url = pack('N', 0) . $target . "\0";           # flags 0: external
    my $vol = 'Macintosh HD';
    my $file = (split m{/}, $target)[-1];
    my $path = $target;
    $path .= "\0" if length($path) & 1;
    my $alis = pack('N', 0)                             # version/flags
             . ("\0" x 10)
             . pack('C', length $vol) . pack('a27', $vol)
             . ("\0" x 12)
             . pack('C', length $file) . pack('a63', $file)
             . ("\0" x 16)
             . pack('nn', 1, 1)                  # nlvl from, to
             . ("\0" x 16)
             . pack('nn', 2, length $target) . $path   # absolute path
             . pack('nn', 0xFFFF, 0);
    my $dref = pack('NN', 0, 2) . _box('alis', $alis) . _box('url ', $url);

    my $out = '';
    for my $a (@top) {
        my ($t, $p) = @$a;
        if ($t eq 'moov') {
            $p = _rebuild($p, [qw(trak mdia minf dinf dref)], sub { $dref });
            # stsd entries point at data reference 1 (the alias; libavformat
            # drops the 'url ' entry it cannot use); the
            # data_reference_index is at offset 8+6 in each sample entry
            $p = _rebuild($p, [qw(trak mdia minf stbl stsd)], sub {
                my ($sp) = @_;
                my $hdr = substr($sp, 0, 8);
                my $ents = '';
                for my $e (mp4_atoms(substr($sp, 8))) {
                    my ($et, $ep) = @$e;
                    substr($ep, 6, 2) = pack('n', 1) if length $ep >= 8;
                    $ents .= _box($et, $ep);
                }
                return $hdr . $ents;
            });
        }
        $out .= _box($t, $p);
    }
    return spew(File::Spec->catfile($dir, $name), $out);
}


# ------------------------------------------------------------ pictures

# a valid PNG with its IHDR width/height replaced, CRC recomputed
sub png_huge {
    my ($dir, $src, $name, $w, $h) = @_;
    my $d = slurp($src);
    die "png_huge: no IHDR" unless substr($d, 12, 4) eq 'IHDR';
    substr($d, 16, 8) = pack('NN', $w, $h);
    substr($d, 29, 4) = pack('N', crc32(substr($d, 12, 17)));
    return spew(File::Spec->catfile($dir, $name), $d);
}

# a valid GIF with its logical screen size replaced (and the first image
# descriptor too, so the frame claims to cover the whole screen)
sub gif_huge {
    my ($dir, $src, $name, $w, $h, %o) = @_;
    my $d = slurp($src);
    die "gif_huge: not a GIF" unless $d =~ /^GIF8[79]a/;
    substr($d, 6, 4) = pack('vv', $w, $h);
    if ($o{image_too}) {
        # skip the global color table, extensions, to the first ','
        my $flags = ord substr($d, 10, 1);
        my $pos = 13 + (($flags & 0x80) ? 3 * (2 << ($flags & 7)) : 0);
        while ($pos < length $d && substr($d, $pos, 1) eq '!') {
            $pos += 2;
            while ($pos < length $d) {
                my $n = ord substr($d, $pos, 1);
                $pos += 1 + $n;
                last if $n == 0;
            }
        }
        substr($d, $pos + 5, 4) = pack('vv', $w, $h)
            if substr($d, $pos, 1) eq ',';
    }
    return spew(File::Spec->catfile($dir, $name), $d);
}


# ------------------------------------------------------------ Matroska

# ffmpeg's way: $n (<= 1000, its muxer's max_streams) tiny PCM tracks
sub many_streams_mkv {
    my ($dir, $name, $n) = @_;
    my $f = File::Spec->catfile($dir, $name);
    ff('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=8000:duration=0.1',
       (map { ('-map', '0:a') } 1 .. $n), '-c:a', 'pcm_u8', $f);
    return $f;
}

# EBML variable-size integers
sub _vint {
    my ($d, $pos) = @_;
    my $b = ord substr($d, $pos, 1);
    my $len = 1;
    $len++ while $len <= 8 && !($b & (0x80 >> ($len - 1)));
    my $v = $b & (0xFF >> $len);
    $v = $v * 256 + ord substr($d, $pos + $_, 1) for 1 .. $len - 1;
    return ($v, $len);
}

sub _ebml_id {
    my ($d, $pos) = @_;
    my (undef, $len) = _vint($d, $pos);
    return (substr($d, $pos, $len), $len);
}

sub _ebml_size {
    my ($n) = @_;
    for my $len (1 .. 8) {
        next if $n >= 2 ** (7 * $len) - 1;
        my @b;
        my $v = $n;
        for (1 .. $len) { unshift @b, $v % 256; $v = int($v / 256) }
        $b[0] |= 0x80 >> ($len - 1);
        return pack('C*', @b);
    }
    die "_ebml_size: $n too big";
}

sub _ebml {
    my ($id, $payload) = @_;
    return $id . _ebml_size(length $payload) . $payload;
}

sub _ebml_children {
    my ($d) = @_;
    my @c;
    my $pos = 0;
    while ($pos < length $d) {
        my ($id, $il) = _ebml_id($d, $pos);
        my ($sz, $sl) = _vint($d, $pos + $il);
        push @c, [$id, substr($d, $pos + $il + $sl, $sz)];
        $pos += $il + $sl + $sz;
    }
    return @c;
}

# A Matroska file with $n audio tracks, made by hand: ffmpeg writes one
# PCM track to a pipe (unknown segment size, no SeekHead/Cues), and its
# TrackEntry is repeated with new TrackNumber/TrackUID.  Only track 1 has
# blocks.  ffmpeg itself cannot write more than 1000 streams.
sub many_tracks_mkv {
    my ($dir, $name, $n) = @_;
    my $one = File::Spec->catfile($dir, "one-track-$$.mkv");
    my $cmd = "ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi "
            . "-i sine=frequency=440:sample_rate=8000:duration=0.2 "
            . "-c:a pcm_u8 -f matroska - > '$one'";
    system($cmd) == 0 or die "ffmpeg failed: $cmd";
    my $d = slurp($one);
    unlink $one;
    $d = _mkv_tracks($d, sub {
        my ($p) = @_;
        my ($te) = grep { $_->[0] eq "\xAE" } _ebml_children($p);
        my $rest = join '', map { _ebml($_->[0], $_->[1]) }
            grep { $_->[0] ne "\xD7" && $_->[0] ne "\x73\xC5" }
            _ebml_children($te->[1]);
        my $tracks = '';
        for my $i (1 .. $n) {
            $tracks .= _ebml("\xAE", _ebml("\xD7", pack('n', $i))
                            . _ebml("\x73\xC5", pack('NN', 0x1234, $i))
                            . $rest);
        }
        return $tracks;
    });
    return spew(File::Spec->catfile($dir, $name), $d);
}

# a copy of a Matroska file as ffmpeg writes it to a pipe (unknown
# segment size, no SeekHead/Cues), so that elements can change size
sub _mkv_streamed {
    my ($src) = @_;
    my $tmp = "$src.streamed-$$";
    my $cmd = "ffmpeg -nostdin -hide_banner -loglevel error -y -i '$src' "
            . "-c copy -f matroska - > '$tmp'";
    system($cmd) == 0 or die "ffmpeg failed: $cmd";
    my $d = slurp($tmp);
    unlink $tmp;
    return $d;
}

# rewrites the Tracks element of a streamed Matroska file with $cb; what
# follows Tracks (clusters) is copied as it is
sub _mkv_tracks {
    my ($d, $cb) = @_;
    my $seg = "\x18\x53\x80\x67";
    my $at = index($d, $seg);
    die "no Segment" if $at < 0;
    my (undef, $sl) = _vint($d, $at + 4);
    my $pos = $at + 4 + $sl;
    my $out = '';
    while ($pos < length $d) {
        my ($id, $il) = _ebml_id($d, $pos);
        my ($sz, $szl) = _vint($d, $pos + $il);
        if ($id eq "\x16\x54\xAE\x6B") {
            $out .= _ebml($id, $cb->(substr($d, $pos + $il + $szl, $sz)));
            $out .= substr($d, $pos + $il + $szl + $sz);
            last;
        }
        $out .= substr($d, $pos, $il + $szl + $sz);
        $pos += $il + $szl + $sz;
    }
    return substr($d, 0, $at) . $seg . "\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF"
         . $out;
}

# PixelWidth (0xB0) and PixelHeight (0xBA) of the video track set to
# $w x $h (the codec data inside still says the real size)
sub mkv_patch_dims {
    my ($src, $dest, $w, $h) = @_;
    my $n = 0;
    my $d = _mkv_tracks(_mkv_streamed($src), sub {
        my ($tracks) = @_;
        my $out = '';
        for my $te (_ebml_children($tracks)) {
            next if $te->[0] eq "\xBF";            # CRC-32: now wrong
            if ($te->[0] ne "\xAE") {
                $out .= _ebml(@$te);
                next;
            }
            my $tp = '';
            for my $c (_ebml_children($te->[1])) {
                my ($id, $p) = @$c;
                if ($id eq "\xE0") {
                    my $v = '';
                    for my $vc (_ebml_children($p)) {
                        my ($vid, $vp) = @$vc;
                        if ($vid eq "\xB0") { $vp = pack('N', $w); $n++ }
                        if ($vid eq "\xBA") { $vp = pack('N', $h); $n++ }
                        $v .= _ebml($vid, $vp);
                    }
                    $p = $v;
                }
                $tp .= _ebml($id, $p);
            }
            $out .= _ebml($te->[0], $tp);
        }
        return $out;
    });
    die "mkv_patch_dims: PixelWidth/PixelHeight not found" unless $n == 2;
    return spew($dest, $d);
}

# two MPEG-TS segments, the second one bigger, cut together byte-wise
sub ts_size_change {
    my ($dir, $name, $s1, $s2, %o) = @_;
    my $d1 = $o{duration1} // 1;
    my $d2 = $o{duration2} // 1;
    my $a = File::Spec->catfile($dir, "seg1-$s1.ts");
    my $b = File::Spec->catfile($dir, "seg2-$s2.ts");
    ff('-f', 'lavfi', '-i', "testsrc2=size=$s1:rate=25:duration=$d1",
       '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', $a);
    ff('-f', 'lavfi', '-i', "testsrc2=size=$s2:rate=25:duration=$d2",
       '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
       '-output_ts_offset', $d1, $b);
    return spew(File::Spec->catfile($dir, $name), slurp($a) . slurp($b));
}


# ------------------------------------------------------------ mutations

# deterministic: mutate($bytes, $seed) -> ($new_bytes, "what was done")
sub mutate {
    my ($d, $seed) = @_;
    srand($seed);
    my $len = length $d;
    return ($d, 'empty') unless $len;
    my $kind = $seed % 8;
    if ($kind == 0) {                       # a few random bit flips
        my $n = 1 + int rand 8;
        for (1 .. $n) {
            my $p = int rand $len;
            substr($d, $p, 1) = chr(ord(substr($d, $p, 1)) ^ (1 << int rand 8));
        }
        return ($d, "$n bit flips");
    } elsif ($kind == 1) {                  # bit flips in the first 512 bytes
        my $n = 1 + int rand 16;
        my $lim = $len < 512 ? $len : 512;
        for (1 .. $n) {
            my $p = int rand $lim;
            substr($d, $p, 1) = chr(ord(substr($d, $p, 1)) ^ (1 << int rand 8));
        }
        return ($d, "$n header bit flips");
    } elsif ($kind == 2) {                  # truncation
        my $at = int rand $len;
        return (substr($d, 0, $at), "truncated at $at");
    } elsif ($kind == 3) {                  # a zeroed run (an atom, a table)
        my $p = int rand $len;
        my $n = 4 + int rand 256;
        $n = $len - $p if $p + $n > $len;
        substr($d, $p, $n) = "\0" x $n;
        return ($d, "zeroed $n at $p");
    } elsif ($kind == 4) {                  # 0xFF run (huge sizes/counts)
        my $p = int rand $len;
        my $n = 1 + int rand 8;
        $n = $len - $p if $p + $n > $len;
        substr($d, $p, $n) = "\xFF" x $n;
        return ($d, "0xff x$n at $p");
    } elsif ($kind == 5) {                  # spliced: head repeated inside
        my $p = int rand $len;
        my $n = 16 + int rand 1024;
        return (substr($d, 0, $p) . substr($d, 0, $n) . substr($d, $p),
                "head($n) spliced at $p");
    } elsif ($kind == 6) {                  # a chunk duplicated/moved
        my $p = int rand $len;
        my $n = 1 + int rand 4096;
        my $q = int rand $len;
        my $piece = substr($d, $p, $n);
        substr($d, $q, 0) = $piece;
        return ($d, "chunk $p+$n copied to $q");
    } else {                                # random bytes at random spots
        my $n = 1 + int rand 64;
        for (1 .. $n) {
            my $p = int rand $len;
            substr($d, $p, 1) = chr int rand 256;
        }
        return ($d, "$n random bytes");
    }
}


# ------------------------------------------------------------ listener

package VconvHostile::Listener;

use IO::Socket::INET;
use IO::Select;
use POSIX qw(_exit);
use File::Temp qw(tempfile);
use Time::HiRes qw(time sleep);

# A forked loopback TCP server that records every connection (and the
# first line it is sent) in a file, answers nothing useful, and exits
# after $o{lifetime} s (default 600) or on stop.
sub new {
    my ($class, %o) = @_;
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                     Proto => 'tcp', Listen => 16,
                                     ReuseAddr => 1)
        or die "listener: $!";
    my ($fh, $log) = tempfile('vconv-listen-XXXXXX', TMPDIR => 1, UNLINK => 1);
    close $fh;
    my $lifetime = $o{lifetime} // 600;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # the harness turns TERM into die(): here it must just end us
        $SIG{$_} = 'DEFAULT' for qw(TERM INT HUP);
        my $end = time + $lifetime;
        my $sel = IO::Select->new($sock);
        while (time < $end) {
            next unless $sel->can_read(0.2);
            my $c = $sock->accept or next;
            my $line = '';
            my $cs = IO::Select->new($c);
            if ($cs->can_read(1)) {
                sysread($c, $line, 512);
            }
            $line =~ s/[\r\n].*//s;
            if (open my $l, '>>', $log) {
                print $l "connection: $line\n";
                close $l;
            }
            print $c "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            close $c;
        }
        _exit(0);
    }
    my $port = $sock->sockport;
    close $sock;
    return bless { pid => $pid, port => $port, log => $log,
                   creator => $$ }, $class;
}

sub port { $_[0]{port} }

sub connections {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return ();
    my @l = <$fh>;
    chomp @l;
    return @l;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $$ == $self->{creator};
    kill 'TERM', $self->{pid};
    waitpid($self->{pid}, 0);
    $self->{pid} = undef;
    unlink $self->{log};
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $@, $!);
    $self->stop;
}

1;
